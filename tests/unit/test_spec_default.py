"""pyrunc.spec.default: the template `pyrunc spec` writes, checked against runc 1.1.5's."""
import json
import os
import shutil
import subprocess

import pytest

from pyrunc.spec import semantic
from pyrunc.spec.default import OCI_VERSION, default_spec
from pyrunc.spec.validate import validate

RUNC = shutil.which("runc")


def runc_spec(tmp_path, rootless):
    args = [RUNC, "spec"] + (["--rootless"] if rootless else [])
    subprocess.run(args, cwd=tmp_path, check=True, capture_output=True, timeout=30)
    with open(tmp_path / "config.json") as f:
        return json.load(f)


@pytest.mark.runc
@pytest.mark.skipif(RUNC is None, reason="runc not installed")
@pytest.mark.parametrize("rootless", [False, True])
def test_same_as_runc_spec_but_version(tmp_path, rootless):
    theirs = runc_spec(tmp_path, rootless)
    assert theirs.pop("ociVersion") != OCI_VERSION      # runc 1.1.5 says 1.0.2-dev
    ours = default_spec(rootless)
    assert ours.pop("ociVersion") == "1.2.0"
    # field by field first, for a readable failure, then the whole (order included)
    for key in theirs:
        assert ours.get(key) == theirs[key], key
    assert json.dumps(ours) == json.dumps(theirs)


@pytest.mark.parametrize("rootless", [False, True])
def test_template_is_a_valid_config(rootless):
    doc = default_spec(rootless)
    validate(doc, "config")
    assert semantic.check_config(doc) == []


def test_rootless_maps_the_caller():
    linux = default_spec(True)["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert {"type": "network"} not in linux["namespaces"]
    assert "resources" not in linux


def test_each_call_returns_a_fresh_dict():
    a = default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    a["linux"]["maskedPaths"].clear()
    b = default_spec()
    assert "CAP_SYS_ADMIN" not in b["process"]["capabilities"]["bounding"]
    assert b["linux"]["maskedPaths"]
    assert b["process"]["capabilities"]["ambient"] == ["CAP_AUDIT_WRITE", "CAP_KILL",
                                                       "CAP_NET_BIND_SERVICE"]
