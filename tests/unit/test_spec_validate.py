"""pyrunc.spec.validate: the project's own schemas in specs/, and the errors they give."""
import copy
import glob
import json
import os

import pytest

from pyrunc.errors import ConfigError
from pyrunc.spec import validate as v
from pyrunc.spec.default import default_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = next((d for d in (os.path.join(REPO, "..", "shared", "fixtures", "real-configs"),
                             "/work/shared/fixtures/real-configs") if os.path.isdir(d)), None)
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="shared/fixtures/real-configs missing")


def schema_for(filename):
    if filename.endswith("-config.json") and "-create" in filename:
        return "config"
    if "-exec-" in filename:
        return "process"
    if "-update-resources" in filename:
        return "linux-resources"
    raise AssertionError(filename)


def fixture_files():
    if FIXTURES is None:
        return []
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, "*.json")))


def load_fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def error_of(doc, schema="config"):
    with pytest.raises(ConfigError) as info:
        v.validate(doc, schema)
    return info.value.path, info.value.message


# -- the schemas themselves -------------------------------------------------

def test_specs_dir_is_the_top_level_folder():
    assert os.path.samefile(v.specs_dir(), os.path.join(REPO, "specs"))


def test_every_schema_file_is_valid_draft7():
    from jsonschema import Draft7Validator
    files = glob.glob(os.path.join(REPO, "specs", "*.schema.json"))
    assert len(files) >= 5
    for path in files:
        with open(path) as f:
            Draft7Validator.check_schema(json.load(f))


def test_unknown_schema_name():
    with pytest.raises(ValueError):
        v.validate({}, "nope")


# -- real client documents ----------------------------------------------------

@needs_fixtures
def test_there_are_fixtures_of_each_kind():
    kinds = {schema_for(n) for n in fixture_files()}
    assert kinds == {"config", "process", "linux-resources"}


@needs_fixtures
@pytest.mark.parametrize("name", fixture_files())
def test_real_client_documents_validate(name):
    assert v.validate(load_fixture(name), schema_for(name)) is None


@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_validates(rootless):
    assert v.validate(default_spec(rootless), "config") is None


# -- error paths and messages -------------------------------------------------

@needs_fixtures
@pytest.mark.parametrize("mutate, path, message", [
    (lambda d: d["process"].pop("cwd"), "process.cwd", "required property missing"),
    (lambda d: d.pop("ociVersion"), "ociVersion", "required property missing"),
    (lambda d: d["mounts"][2].pop("destination"), "mounts[2].destination",
     "required property missing"),
    (lambda d: d["linux"]["namespaces"][1].update(type="foo"), "linux.namespaces[1].type",
     "'foo' is not one of ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time']"),
    (lambda d: d["process"].update(args="sleep"), "process.args", "expected array, got string"),
    (lambda d: d["process"]["args"].__setitem__(1, 1000), "process.args[1]",
     "expected string, got integer"),
    (lambda d: d["process"]["user"].update(uid=-1), "process.user.uid",
     "-1 is less than the minimum of 0"),
    (lambda d: d["process"]["user"].update(uid=2 ** 32), "process.user.uid",
     "4294967296 is greater than the maximum of 4294967295"),
    (lambda d: d["linux"]["sysctl"].update({"net.core.somaxconn": 5}),
     'linux.sysctl["net.core.somaxconn"]', "expected string, got integer"),
    (lambda d: d["linux"]["seccomp"]["syscalls"][2]["args"][0].update(op="EQ"),
     "linux.seccomp.syscalls[2].args[0].op", None),
    (lambda d: d["linux"]["seccomp"]["syscalls"][0].update(names=[]),
     "linux.seccomp.syscalls[0].names", "must have at least 1 item(s)"),
    (lambda d: d["hooks"]["prestart"][0].update(timeout=0), "hooks.prestart[0].timeout",
     "0 is less than the minimum of 1"),
    (lambda d: d["linux"]["resources"]["devices"][1].pop("allow"),
     "linux.resources.devices[1].allow", "required property missing"),
    (lambda d: d["root"].update(readonly="yes"), "root.readonly", "expected boolean, got string"),
])
def test_error_path_and_message(mutate, path, message):
    doc = load_fixture("docker-create-config.json")
    mutate(doc)
    got_path, got_message = error_of(doc)
    assert got_path == path
    if message is not None:
        assert got_message == message
    assert "\n" not in got_message


def test_whole_document_of_wrong_type():
    assert error_of([]) == ("", "expected object, got array")


def test_float_is_not_an_integer():
    # Go's decoder refuses 1.0 for an int field; so do we (draft 7 alone would not)
    doc = default_spec()
    doc["process"]["rlimits"][0]["soft"] = 1024.0
    assert error_of(doc) == ("process.rlimits[0].soft", "expected integer, got number")


def test_bool_is_not_an_integer():
    doc = default_spec()
    doc["process"]["user"]["gid"] = True
    assert error_of(doc) == ("process.user.gid", "expected integer, got boolean")


def test_first_error_in_document_order():
    doc = default_spec()
    doc["linux"]["namespaces"][0]["type"] = "bogus"     # later in the file
    doc["process"]["terminal"] = "yes"                   # earlier in the file
    assert error_of(doc)[0] == "process.terminal"


def test_unknown_members_are_ignored():
    doc = default_spec()
    doc["futureField"] = {"x": 1}
    doc["process"]["futureField"] = 1
    doc["linux"]["resources"]["futureController"] = {}
    assert v.validate(doc, "config") is None


def test_runtime_spec_1_2_members_are_checked():
    doc = default_spec()
    doc["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 10}
    doc["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    doc["process"]["execCPUAffinity"] = {"initial": "0-1", "final": "0,3"}
    doc["linux"]["namespaces"].append({"type": "time"})
    doc["linux"]["timeOffsets"] = {"monotonic": {"secs": -5, "nanosecs": 0}}
    doc["linux"]["rootfsPropagation"] = "rshared"
    doc["linux"]["intelRdt"] = {"schemata": "L3:0=f"}
    assert v.validate(doc, "config") is None
    bad = copy.deepcopy(doc)
    bad["process"]["scheduler"]["policy"] = "SCHED_FAST"
    assert error_of(bad)[0] == "process.scheduler.policy"
    bad = copy.deepcopy(doc)
    bad["process"]["execCPUAffinity"]["final"] = "all"
    assert error_of(bad)[0] == "process.execCPUAffinity.final"
    bad = copy.deepcopy(doc)
    bad["linux"]["timeOffsets"]["monotonic"]["nanosecs"] = -1
    assert error_of(bad)[0] == "linux.timeOffsets.monotonic.nanosecs"


def test_process_schema_paths_are_relative_to_the_process():
    proc = default_spec()["process"]
    del proc["cwd"]
    assert error_of(proc, "process") == ("cwd", "required property missing")


def test_resources_schema():
    assert v.validate({"memory": {"limit": -1}, "pids": {"limit": 10}}, "linux-resources") is None
    assert error_of({"pids": {}}, "linux-resources") == ("pids.limit", "required property missing")
    assert error_of({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]},
                    "linux-resources")[0] == "hugepageLimits[0].pageSize"
    assert error_of({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}},
                    "linux-resources") == ("blockIO.throttleReadBpsDevice[0].minor",
                                           "required property missing")


@pytest.mark.parametrize("segments, text", [
    ([], ""),
    (["process", "args"], "process.args"),
    (["mounts", 2, "destination"], "mounts[2].destination"),
    (["linux", "sysctl", "net.ipv4.ip_forward"], 'linux.sysctl["net.ipv4.ip_forward"]'),
    ([0, "x"], "[0].x"),
])
def test_json_path(segments, text):
    assert v.json_path(segments) == text
