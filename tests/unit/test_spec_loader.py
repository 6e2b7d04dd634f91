"""pyrunc.spec.loader: reading bundles, exec process files and update resources."""
import io
import json
import os

import pytest

from pyrunc.errors import ConfigError
from pyrunc.spec import loader
from pyrunc.spec.config import Config, Process
from pyrunc.spec.default import default_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = next((d for d in (os.path.join(REPO, "..", "shared", "fixtures", "real-configs"),
                             "/work/shared/fixtures/real-configs") if os.path.isdir(d)), None)
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="shared/fixtures/real-configs missing")


def make_bundle(tmp_path, doc=None, text=None, rootfs=True):
    if rootfs:
        (tmp_path / "rootfs").mkdir()
    if text is None:
        text = json.dumps(default_spec() if doc is None else doc)
    (tmp_path / "config.json").write_text(text)
    return str(tmp_path)


def load_error(bundle, **kw):
    with pytest.raises(ConfigError) as info:
        loader.load_bundle(bundle, **kw)
    return info.value.path, info.value.message


def test_loads_default_spec(tmp_path):
    cfg = loader.load_bundle(make_bundle(tmp_path))
    assert isinstance(cfg, Config)
    assert cfg.root.path == str(tmp_path / "rootfs")
    assert cfg.process.args == ("sh",)
    assert cfg.linux.namespace("network") is not None


@needs_fixtures
def test_loads_docker_config(tmp_path):
    with open(os.path.join(FIXTURES, "docker-create-config.json")) as f:
        doc = json.load(f)
    doc["root"]["path"] = "rootfs"
    cfg = loader.load_bundle(make_bundle(tmp_path, doc))
    assert cfg.hostname == "68208d8cf31a"
    assert cfg.hooks["prestart"][0].args[0] == "libnetwork-setkey"
    assert cfg.linux.sysctl["net.ipv4.ping_group_range"] == "0 2147483647"


def test_missing_config_json(tmp_path):
    path, message = load_error(str(tmp_path))
    assert message == f"open {tmp_path}/config.json: no such file or directory"


def test_missing_bundle_dir(tmp_path):
    assert "no such file or directory" in load_error(str(tmp_path / "nope"))[1]


def test_truncated_json(tmp_path):
    text = json.dumps(default_spec(), indent=1)
    bundle = make_bundle(tmp_path, text=text[: len(text) // 2])
    path, message = load_error(bundle)
    assert message.startswith(f"parse {bundle}/config.json: unexpected end of JSON input at line ")
    assert " column " in message


def test_invalid_json_names_line_and_column(tmp_path):
    bundle = make_bundle(tmp_path, text='{\n  "ociVersion": "1.2.0",\n  "root": {path: 1}\n}')
    assert load_error(bundle)[1] == (f"parse {bundle}/config.json: expecting property name "
                                     "enclosed in double quotes at line 3 column 12")


def test_not_utf8(tmp_path):
    bundle = make_bundle(tmp_path, text="")
    (tmp_path / "config.json").write_bytes(b'{"ociVersion": "\xff"}')
    assert "invalid UTF-8" in load_error(bundle)[1]


def test_missing_process_args(tmp_path):
    doc = default_spec()
    del doc["process"]["args"]
    assert load_error(make_bundle(tmp_path, doc)) == ("process.args", "args must not be empty")


def test_unknown_namespace_type(tmp_path):
    doc = default_spec()
    doc["linux"]["namespaces"][1]["type"] = "bogus"
    path, message = load_error(make_bundle(tmp_path, doc))
    assert path == "linux.namespaces[1].type"
    assert message.startswith("'bogus' is not one of [")


def test_duplicate_namespace(tmp_path):
    doc = default_spec()
    doc["linux"]["namespaces"].append({"type": "ipc"})
    assert load_error(make_bundle(tmp_path, doc)) == ("linux.namespaces[5].type",
                                                      'duplicated namespace "ipc"')


def test_rootfs_missing(tmp_path):
    bundle = make_bundle(tmp_path, rootfs=False)
    path, message = load_error(bundle)
    assert path == "root.path"
    assert message == f"invalid rootfs: stat {bundle}/rootfs: no such file or directory"


def test_rootfs_not_a_directory(tmp_path):
    bundle = make_bundle(tmp_path, rootfs=False)
    (tmp_path / "rootfs").write_text("")
    assert load_error(bundle) == ("root.path", f"invalid rootfs: {bundle}/rootfs: not a directory")


def test_rootfs_error_text_names_root_path(tmp_path):
    bundle = make_bundle(tmp_path, rootfs=False)
    with pytest.raises(ConfigError) as info:
        loader.load_bundle(bundle)
    assert str(info.value).startswith("root.path: invalid rootfs: stat ")
    assert str(info.value).endswith("no such file or directory")


def test_absolute_root_path(tmp_path):
    doc = default_spec()
    (tmp_path / "elsewhere").mkdir()
    doc["root"]["path"] = str(tmp_path / "elsewhere")
    cfg = loader.load_bundle(make_bundle(tmp_path, doc, rootfs=False))
    assert cfg.root.path == str(tmp_path / "elsewhere")


def test_mount_without_destination(tmp_path):
    doc = default_spec()
    doc["mounts"].append({"type": "tmpfs", "source": "tmpfs"})
    assert load_error(make_bundle(tmp_path, doc)) == ("mounts[7].destination",
                                                      "required property missing")


def test_relative_mount_destination_warns_and_is_made_absolute(tmp_path):
    doc = default_spec()
    doc["mounts"].append({"destination": "data", "type": "tmpfs", "source": "tmpfs"})
    seen = []
    cfg = loader.load_bundle(make_bundle(tmp_path, doc), warn=seen.append)
    assert cfg.mounts[-1].destination == "/data"
    assert len(seen) == 1 and seen[0].startswith("mount destination data is not absolute.")
    # without a callback the warning is dropped, the load still succeeds
    assert loader.load_bundle(str(tmp_path)).mounts[-1].destination == "/data"


def test_process_optional_when_not_required(tmp_path):
    doc = default_spec()
    del doc["process"]
    bundle = make_bundle(tmp_path, doc)
    assert load_error(bundle) == ("process", "process property must not be empty")
    assert loader.load_bundle(bundle, require_process=False).process is None


def test_schema_error_comes_before_semantic_error(tmp_path):
    doc = default_spec()
    doc["process"]["cwd"] = 7               # schema
    doc["linux"]["namespaces"].append({"type": "pid"})   # semantic
    assert load_error(make_bundle(tmp_path, doc))[0] == "process.cwd"


# -- exec --process ---------------------------------------------------------------

@needs_fixtures
@pytest.mark.parametrize("name", ["docker-exec-process.json", "ctr-exec-tty-process.json",
                                  "podman-exec-process.json"])
def test_load_process_fixture(name):
    proc = loader.load_process(os.path.join(FIXTURES, name))
    assert isinstance(proc, Process) and proc.args


def test_load_process_from_stdin():
    data = json.dumps({"cwd": "/", "args": ["ls", "-l"], "terminal": True})
    proc = loader.load_process("-", stdin=io.BytesIO(data.encode()))
    assert proc.args == ("ls", "-l") and proc.terminal
    assert loader.load_process("-", stdin=io.StringIO(data)).args == ("ls", "-l")


def test_load_process_errors(tmp_path):
    with pytest.raises(ConfigError) as info:
        loader.load_process(str(tmp_path / "p.json"))
    assert info.value.message.endswith("p.json: no such file or directory")
    for doc, path in [({"cwd": "/"}, "args"), ({"args": ["x"]}, "cwd"),
                      ({"cwd": "x", "args": ["x"]}, "cwd"),
                      ({"cwd": "/", "args": ["x"], "env": ["A"]}, "env[0]")]:
        with pytest.raises(ConfigError) as info:
            loader.load_process("-", stdin=io.StringIO(json.dumps(doc)))
        assert info.value.path == path, doc


# -- update --resources -----------------------------------------------------------

@needs_fixtures
@pytest.mark.parametrize("name", ["docker-update-resources.json", "podman-update-resources.json"])
def test_load_resources_fixture(name):
    assert loader.load_resources(os.path.join(FIXTURES, name))["memory"]["limit"] == 134217728


def test_load_resources_errors():
    with pytest.raises(ConfigError) as info:
        loader.load_resources("-", stdin=io.StringIO('{"memory": {"limit": "1g"}}'))
    assert (info.value.path, info.value.message) == ("memory.limit", "expected integer, got string")
    with pytest.raises(ConfigError) as info:
        loader.load_resources("-", stdin=io.StringIO('{"memory": '))
    assert "unexpected end of JSON input" in info.value.message
