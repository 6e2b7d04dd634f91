"""Our schemas against the official runtime-spec schema (Debian's copy, 1.0.2-dev) as an oracle.

For every document here -- the real client fixtures, runc's default spec, a
config that uses nearly every 1.0.2 field -- and for hundreds of mutations of
each (wrong types, missing members, bad enum values, out-of-range numbers,
extra members), both schemas must say the same valid/invalid.  The only
disagreements allowed are listed in KNOWN_DIFFERENCES and NEWER_THAN_ORACLE,
each with the reason.
"""
import copy
import glob
import json
import os

import pytest

from pyrunc.spec.default import default_spec
from pyrunc.spec.validate import _validator

OFFICIAL = "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = next((d for d in (os.path.join(REPO, "..", "shared", "fixtures", "real-configs"),
                             "/work/shared/fixtures/real-configs") if os.path.isdir(d)), None)

pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(OFFICIAL, "config-schema.json")),
    reason="official schema missing (Debian package golang-github-opencontainers-specs-dev)")

# Where the oracle's copy of a schema sits inside its files.
_ORACLE_REFS = {"config": "config-schema.json",
                "process": "config-schema.json#/properties/process",
                "linux-resources": "config-linux.json#/linux/properties/resources"}
_oracles = {}


def oracle(kind):
    if kind not in _oracles:
        from jsonschema import Draft4Validator
        from referencing import Registry
        from referencing.jsonschema import DRAFT4
        resources = []
        for path in glob.glob(os.path.join(OFFICIAL, "*.json")):
            with open(path) as f:
                resources.append(("file://" + path, DRAFT4.create_resource(json.load(f))))
        registry = Registry().with_resources(resources)
        ref = f"file://{OFFICIAL}/{_ORACLE_REFS[kind]}"
        _oracles[kind] = Draft4Validator({"$ref": ref}, registry=registry)
    return _oracles[kind]


def ours_valid(doc, kind):
    # the compiled validator behind validate(): same schema, without the cost
    # of ranking errors (thousands of documents pass through here)
    return _validator(kind).is_valid(doc)


# -- documents ------------------------------------------------------------------

def _hooks():
    # one full hook, and the other stages with a minimal one (they share one
    # definition; mutating six full copies would only cost time)
    hook = {"path": "/bin/true", "args": ["true"], "env": ["A=b"], "timeout": 3}
    stages = ("createRuntime", "createContainer", "startContainer", "poststart", "poststop")
    return {"prestart": [hook], **{s: [{"path": "/bin/true"}] for s in stages}}


def rich_config():
    """Nearly every member runtime-spec 1.0.2 defines for Linux, each with a valid value."""
    ids = [{"containerID": 0, "hostID": 1000, "size": 10}]
    throttle = [{"major": 8, "minor": 0, "rate": 6}]
    return {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "h", "domainname": "d",
        "annotations": {"org.example.key": "value"},
        "process": {
            "terminal": True, "consoleSize": {"height": 24, "width": 80},
            "cwd": "/", "args": ["sh"], "env": ["A=b"], "commandLine": "sh",
            "user": {"uid": 1, "gid": 2, "umask": 18, "additionalGids": [3], "username": "u"},
            "capabilities": {k: ["CAP_KILL"] for k in ("bounding", "effective", "inheritable",
                                                       "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}],
            "noNewPrivileges": True, "apparmorProfile": "p", "selinuxLabel": "l",
            "oomScoreAdj": 5,
        },
        "mounts": [{"destination": "/d", "source": "/s", "type": "bind", "options": ["rbind"],
                    "uidMappings": ids, "gidMappings": ids}],
        "hooks": _hooks(),
        "linux": {
            "namespaces": [{"type": "user"}, {"type": "network", "path": "/var/run/netns/x"}],
            "uidMappings": ids, "gidMappings": ids,
            "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229,
                         "fileMode": 438, "uid": 0, "gid": 0}],
            "cgroupsPath": "/a/b",
            "resources": {
                "devices": [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
                "memory": {"limit": 1, "reservation": 1, "swap": 1, "kernel": 1, "kernelTCP": 1,
                           "swappiness": 1, "disableOOMKiller": True, "useHierarchy": True,
                           "checkBeforeUpdate": True},
                "cpu": {"shares": 1, "quota": 1, "burst": 1, "period": 1, "realtimeRuntime": 1,
                        "realtimePeriod": 1, "cpus": "0", "mems": "0", "idle": 1},
                "blockIO": {"weight": 10, "leafWeight": 10,
                            "weightDevice": [{"major": 8, "minor": 0, "weight": 5,
                                              "leafWeight": 5}],
                            "throttleReadBpsDevice": throttle, "throttleWriteBpsDevice": throttle,
                            "throttleReadIOPSDevice": throttle,
                            "throttleWriteIOPSDevice": throttle},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 1}],
                "network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 1}]},
                "pids": {"limit": 5},
                "rdma": {"mlx5_1": {"hcaHandles": 1, "hcaObjects": 2}},
                "unified": {"memory.max": "1"},
            },
            "rootfsPropagation": "slave",
            "seccomp": {
                "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "listenerPath": "/run/x.sock", "listenerMetadata": "m",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                              "args": [{"index": 0, "value": 1, "valueTwo": 2,
                                        "op": "SCMP_CMP_EQ"}]}]},
            "sysctl": {"net.ipv4.ip_forward": "1"},
            "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
            "mountLabel": "l",
            "intelRdt": {"closID": "c", "l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=20",
                         "enableCMT": True, "enableMBM": True},
            "personality": {"domain": "LINUX", "flags": []},
        },
    }


def documents():
    """(label, kind, doc) for every base document."""
    docs = [("rich-config", "config", rich_config()),
            ("rich-process", "process", rich_config()["process"]),
            ("rich-resources", "linux-resources", rich_config()["linux"]["resources"]),
            ("runc-spec", "config", default_spec(False)),
            ("runc-spec-rootless", "config", default_spec(True))]
    for path in sorted(glob.glob(os.path.join(FIXTURES or "/nonexistent", "*.json"))):
        name = os.path.basename(path)
        kind = ("process" if "-exec-" in name else
                "linux-resources" if "-update-" in name else "config")
        with open(path) as f:
            docs.append((name, kind, json.load(f)))
    return docs


# -- mutations ------------------------------------------------------------------

EXTRA = "xExtraMember"


def _replacements(value):
    if isinstance(value, bool):
        return [("type", "yes")]
    if isinstance(value, int):
        return [("type", "7"), ("negative", -1), ("float", 1.5), ("huge", 2 ** 64),
                ("over-uint16", 70000), ("over-512", 600)]
    if isinstance(value, str):
        return [("type", 12345), ("enum", "bogus-value"), ("empty", "")]
    if isinstance(value, list):
        return [("type", {"k": 1}), ("empty", []), ("null", None)]
    if isinstance(value, dict):
        return [("type", ["x"]), ("empty", {}), ("extra", {EXTRA: {"n": True}})]
    return []


def _walk(node, path):
    """(path, value) of every member and of the first two items of every array."""
    items = node.items() if isinstance(node, dict) else (
        enumerate(node[:2]) if isinstance(node, list) else ())
    for key, value in items:
        yield path + [key], value
        yield from _walk(value, path + [key])


def _mutated(doc, path, change):
    copied = copy.deepcopy(doc)
    parent = copied
    for seg in path[:-1]:
        parent = parent[seg]
    change(parent, path[-1])
    return copied


def mutations(doc):
    """(path, mutation name, mutated document).

    Array items of the same shape give the same verdicts, so a mutation is made
    once per (path with indices as 0, kind of value): that halves the work on
    the long seccomp and mount lists without losing a case.
    """
    yield [], "extra", dict(doc, **{EXTRA: 1})
    seen = set()
    for path, value in _walk(doc, []):
        shape = (tuple(0 if isinstance(p, int) else p for p in path), type(value).__name__,
                 tuple(sorted(value)) if isinstance(value, dict) else None)
        if shape in seen:
            continue
        seen.add(shape)
        if isinstance(path[-1], str):
            yield path, "delete", _mutated(doc, path, lambda p, k: p.pop(k))
        for name, new in _replacements(value):
            if name == "extra":
                new = dict(value, **new)
            yield path, name, _mutated(doc, path, lambda p, k, n=new: p.__setitem__(k, n))


# -- allowed disagreements --------------------------------------------------------

def _file_mode_range(kind, path, name):
    # The spec types devices[].fileMode as uint32; the official schema caps it
    # at 512 (which even refuses setuid/sticky modes).  We follow the spec text.
    return (path[-1:] == ["fileMode"] and name in ("over-uint16", "over-512"),
            (True, False))


KNOWN_DIFFERENCES = [_file_mode_range]


def explain(kind, path, name):
    for rule in KNOWN_DIFFERENCES:
        applies, verdicts = rule(kind, path, name)
        if applies:
            return verdicts
    return None


def test_oracle_accepts_what_it_should():
    # the oracle is wired correctly: it takes the fixtures and refuses junk
    assert oracle("config").is_valid(rich_config())
    assert not oracle("config").is_valid({"ociVersion": 1})
    assert not oracle("process").is_valid({"args": ["x"]})
    assert not oracle("linux-resources").is_valid({"pids": {}})


@pytest.mark.parametrize("label, kind, doc", [pytest.param(*d, id=d[0]) for d in documents()])
def test_agrees_with_official_schema(label, kind, doc):
    assert ours_valid(doc, kind) and oracle(kind).is_valid(doc), label
    disagreements, invalid, total = [], 0, 0
    for path, name, mutated in mutations(doc):
        total += 1
        ours, theirs = ours_valid(mutated, kind), oracle(kind).is_valid(mutated)
        invalid += not theirs
        if ours != theirs and explain(kind, path, name) != (ours, theirs):
            disagreements.append(f"{path} {name}: ours={ours} official={theirs}")
    assert not disagreements, "\n".join(disagreements[:30])
    # the mutations must probe something: a good share has to be invalid
    assert invalid > total // 4, (invalid, total)


# Features newer than the oracle (runtime-spec 1.1/1.2) and choices where we are
# deliberately more permissive.  Each: (what, document change, ours, official).
def _with(change):
    doc = rich_config()
    change(doc)
    return doc


NEWER_THAN_ORACLE = [
    # 1.1 added the time namespace; the oracle's enum stops at cgroup
    ("time namespace", lambda d: d["linux"]["namespaces"].append({"type": "time"}), True, False),
    # containerd's CRI writes rshared/rslave; runc accepts all r* forms
    ("rootfsPropagation rshared", lambda d: d["linux"].update(rootfsPropagation="rshared"),
     True, False),
    ("rootfsPropagation rslave", lambda d: d["linux"].update(rootfsPropagation="rslave"),
     True, False),
    # we do not check the bodies of other platforms' sections
    ("windows body", lambda d: d.update(windows={"layerFolders": []}), True, False),
    ("solaris body", lambda d: d.update(solaris={"milestone": 5}), True, False),
    # 1.1/1.2 members the oracle does not know (so it ignores them); we check them
    ("scheduler policy", lambda d: d["process"].update(scheduler={"policy": "FAST"}),
     False, True),
    ("scheduler missing policy", lambda d: d["process"].update(scheduler={"nice": 1}),
     False, True),
    ("ioPriority class", lambda d: d["process"].update(ioPriority={"class": "X"}), False, True),
    ("execCPUAffinity", lambda d: d["process"].update(execCPUAffinity={"initial": "a"}),
     False, True),
    ("timeOffsets type", lambda d: d["linux"].update(timeOffsets={"boottime": {"secs": "1"}}),
     False, True),
    ("intelRdt schemata", lambda d: d["linux"]["intelRdt"].update(schemata=5), False, True),
    ("netDevices (1.3)", lambda d: d["linux"].update(netDevices={"eth0": {"name": 5}}),
     False, True),
    # ... and agreements on the same neighbourhood, so the list above is not vacuous
    ("valid scheduler", lambda d: d["process"].update(
        scheduler={"policy": "SCHED_RR", "priority": 1, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
     True, True),
    ("valid 1.2 members", lambda d: (d["process"].update(ioPriority={"class": "IOPRIO_CLASS_RT"},
                                                         execCPUAffinity={"final": "0-3"}),
                                     d["linux"]["intelRdt"].update(schemata="L3:0=f")),
     True, True),
    ("rdma value not an object", lambda d: d["linux"]["resources"]["rdma"].update(x=5),
     False, False),
    ("rootfsPropagation bogus", lambda d: d["linux"].update(rootfsPropagation="bogus"),
     False, False),
]


@pytest.mark.parametrize("what, change, ours, official", NEWER_THAN_ORACLE,
                         ids=[c[0] for c in NEWER_THAN_ORACLE])
def test_documented_differences(what, change, ours, official):
    doc = _with(change)
    assert (ours_valid(doc, "config"), oracle("config").is_valid(doc)) == (ours, official)


# Every value an official enum allows must be allowed by ours (mutations only
# probe values the documents happen to use).  Where each enum is used:
_ENUM_SITES = {
    "SeccompAction": ["linux", "seccomp", "defaultAction"],
    "SeccompArch": ["linux", "seccomp", "architectures", 0],
    "SeccompFlag": ["linux", "seccomp", "flags", 0],
    "SeccompOperators": ["linux", "seccomp", "syscalls", 0, "args", 0, "op"],
    "NamespaceType": ["linux", "namespaces", 0, "type"],
    "RootfsPropagation": ["linux", "rootfsPropagation"],
    "PersonalityDomain": ["linux", "personality", "domain"],
}


def official_enums():
    with open(os.path.join(OFFICIAL, "defs-linux.json")) as f:
        defs = json.load(f)["definitions"]
    return {name: d["enum"] for name, d in defs.items() if "enum" in d}


def test_every_official_enum_is_mapped():
    assert set(official_enums()) == set(_ENUM_SITES)


@pytest.mark.parametrize("name", sorted(_ENUM_SITES))
def test_official_enum_values_accepted(name):
    site = _ENUM_SITES[name]
    for value in official_enums()[name]:
        doc = _mutated(rich_config(), site, lambda p, k, v=value: p.__setitem__(k, v))
        assert oracle("config").is_valid(doc), value
        assert ours_valid(doc, "config"), f"{name}: {value}"


@pytest.mark.parametrize("label, kind, doc", [pytest.param(*d, id=d[0]) for d in documents()
                                              if d[1] == "config"])
def test_semantic_checks_never_crash_on_schema_valid_documents(label, kind, doc):
    # whatever passes the schema, the semantic rules and Config.from_dict must
    # either accept or raise ConfigError -- never KeyError/TypeError
    from pyrunc.errors import ConfigError
    from pyrunc.spec import semantic
    from pyrunc.spec.config import Config
    checked = 0
    for _path, _name, mutated in mutations(doc):
        if not ours_valid(mutated, kind):
            continue
        checked += 1
        try:
            semantic.check_config(mutated, host_netns=lambda p: False)
        except ConfigError:
            continue
        Config.from_dict(mutated, "/bundle")
    assert checked > 50
