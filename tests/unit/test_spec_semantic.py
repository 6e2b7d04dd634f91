"""pyrunc.spec.semantic: rules that tie fields together (wording as runc 1.1.5 where it has one)."""
import glob
import json
import os

import pytest

from pyrunc.errors import ConfigError
from pyrunc.spec import semantic
from pyrunc.spec.default import default_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = next((d for d in (os.path.join(REPO, "..", "shared", "fixtures", "real-configs"),
                             "/work/shared/fixtures/real-configs") if os.path.isdir(d)), None)


def base():
    """runc's default spec: passes every rule."""
    return default_spec()


def drop_ns(doc, ns_type):
    doc["linux"]["namespaces"] = [n for n in doc["linux"]["namespaces"] if n["type"] != ns_type]
    return doc


def fails(doc, **kw):
    with pytest.raises(ConfigError) as info:
        semantic.check_config(doc, **kw)
    return info.value.path, info.value.message


def never_host(_path):
    return False


def test_default_spec_passes():
    assert semantic.check_config(base()) == []
    assert semantic.check_config(default_spec(rootless=True)) == []


@pytest.mark.skipif(FIXTURES is None, reason="shared/fixtures/real-configs missing")
def test_real_configs_pass():
    files = glob.glob(os.path.join(FIXTURES, "*-create*config.json"))
    assert files
    for path in files:
        with open(path) as f:
            assert semantic.check_config(json.load(f)) == [], path
    for path in glob.glob(os.path.join(FIXTURES, "*-exec-*.json")):
        with open(path) as f:
            semantic.check_process(json.load(f), base="")


# -- root and process -----------------------------------------------------------

def test_root_required():
    doc = base()
    del doc["root"]
    assert fails(doc) == ("root", "root must be specified")


def test_process_required_when_creating():
    doc = base()
    del doc["process"]
    assert fails(doc) == ("process", "process property must not be empty")
    assert semantic.check_config(doc, require_process=False) == []


@pytest.mark.parametrize("args", [None, []])
def test_process_args_non_empty(args):
    doc = base()
    if args is None:
        del doc["process"]["args"]
    else:
        doc["process"]["args"] = args
    assert fails(doc) == ("process.args", "args must not be empty")


@pytest.mark.parametrize("cwd", ["", "rel/dir", "./x"])
def test_process_cwd_absolute(cwd):
    doc = base()
    doc["process"]["cwd"] = cwd
    assert fails(doc) == ("process.cwd", "cwd must be an absolute path")


def test_env_entries():
    doc = base()
    doc["process"]["env"].append("NOEQUALS")
    assert fails(doc) == ("process.env[2]", 'invalid environment variable: "NOEQUALS"')
    doc["process"]["env"][2] = "=x"
    assert fails(doc) == ("process.env[2]", 'environment variable name can\'t be empty: "=x"')
    doc["process"]["env"][2] = "EMPTY="
    assert semantic.check_config(doc) == []


def test_rlimits():
    doc = base()
    doc["process"]["rlimits"].append({"type": "RLIMIT_FOO", "soft": 1, "hard": 1})
    assert fails(doc) == ("process.rlimits[1].type", "wrong rlimit value: RLIMIT_FOO")
    doc["process"]["rlimits"][1]["type"] = "RLIMIT_NOFILE"
    assert fails(doc) == ("process.rlimits[1].type", "duplicate rlimit type RLIMIT_NOFILE")
    doc["process"]["rlimits"][1] = {"type": "RLIMIT_CORE", "soft": 10, "hard": 5}
    assert fails(doc) == ("process.rlimits[1]", "RLIMIT_CORE soft limit 10 exceeds hard limit 5")


def test_check_process_standalone_paths():
    proc = base()["process"]
    proc["cwd"] = "tmp"
    with pytest.raises(ConfigError) as info:
        semantic.check_process(proc, base="")
    assert info.value.path == "cwd"


# -- namespaces -----------------------------------------------------------------

def test_duplicate_namespace():
    doc = base()
    doc["linux"]["namespaces"].append({"type": "pid", "path": "/proc/1/ns/pid"})
    assert fails(doc) == ("linux.namespaces[5].type", 'duplicated namespace "pid"')


def test_unknown_namespace_type():
    doc = base()
    doc["linux"]["namespaces"][2]["type"] = "foo"
    assert fails(doc) == ("linux.namespaces[2].type", 'namespace "foo" does not exist')


def test_namespace_path_absolute():
    doc = base()
    doc["linux"]["namespaces"][0]["path"] = "proc/1/ns/pid"
    assert fails(doc) == ("linux.namespaces[0].path",
                          'namespace path "proc/1/ns/pid" must be absolute')


def test_joined_cgroup_and_time_namespaces_are_fine():
    doc = base()
    doc["linux"]["namespaces"] += [{"type": "cgroup", "path": "/proc/7/ns/cgroup"},
                                   {"type": "time", "path": "/proc/7/ns/time"}]
    assert semantic.check_config(doc) == []


def test_user_namespace_needs_mappings():
    doc = base()
    doc["linux"]["namespaces"].append({"type": "user"})
    assert fails(doc) == ("linux.uidMappings",
                          "user namespaces enabled, but no uid mappings found")
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert fails(doc) == ("linux.gidMappings",
                          "user namespaces enabled, but no gid mappings found")
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert semantic.check_config(doc) == []


def test_joined_user_namespace_needs_no_mappings():
    doc = base()
    doc["linux"]["namespaces"].append({"type": "user", "path": "/proc/7/ns/user"})
    assert semantic.check_config(doc) == []


@pytest.mark.parametrize("kind", ["uid", "gid"])
def test_mappings_need_a_user_namespace(kind):
    doc = base()
    doc["linux"][kind + "Mappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert fails(doc) == (f"linux.{kind}Mappings",
                          f"{kind} mappings specified, but the config has no user namespace")


@pytest.mark.parametrize("field", ["hostname", "domainname"])
def test_uts_fields_need_uts_namespace(field):
    doc = drop_ns(base(), "uts")
    doc.pop("hostname")
    assert semantic.check_config(doc) == []
    doc[field] = "box"
    assert fails(doc) == (field, f"unable to set {field} without a private UTS namespace")


def test_empty_hostname_needs_no_uts():
    doc = drop_ns(base(), "uts")
    doc["hostname"] = ""
    assert semantic.check_config(doc) == []


# -- sysctl -------------------------------------------------------------------------

def sysctl(doc, key):
    doc["linux"]["sysctl"] = {key: "1"}
    return doc


def test_net_sysctl_needs_network_namespace():
    doc = sysctl(base(), "net.ipv4.ip_forward")
    assert semantic.check_config(doc) == []
    drop_ns(doc, "network")
    assert fails(doc) == ('linux.sysctl["net.ipv4.ip_forward"]',
                          'sysctl "net.ipv4.ip_forward" not allowed in host network namespace')


def test_net_sysctl_with_joined_network_namespace():
    doc = sysctl(base(), "net.core.somaxconn")
    for ns in doc["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = "/var/run/netns/other"
    assert semantic.check_config(doc, host_netns=never_host) == []
    assert fails(doc, host_netns=lambda p: True)[1] == (
        'sysctl "net.core.somaxconn" not allowed in host network namespace')

    def unreadable(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    assert fails(doc, host_netns=unreadable) == (
        "linux.namespaces[1].path",
        "invalid netns path: stat /var/run/netns/other: no such file or directory")


def test_net_sysctl_with_our_own_netns_path_is_refused():
    # the real check: /proc/self/ns/net is the namespace pyrunc runs in
    doc = sysctl(base(), "net.ipv4.ip_forward")
    doc["linux"]["namespaces"][1]["path"] = "/proc/self/ns/net"
    assert doc["linux"]["namespaces"][1]["type"] == "network"
    assert "not allowed in host network namespace" in fails(doc)[1]


@pytest.mark.parametrize("key", ["kernel.msgmax", "kernel.sem", "kernel.shmmax",
                                 "kernel.shm_rmid_forced", "fs.mqueue.msg_max"])
def test_ipc_sysctls_need_ipc_namespace(key):
    doc = sysctl(base(), key)
    assert semantic.check_config(doc) == []
    drop_ns(doc, "ipc")
    assert fails(doc)[1] == f'sysctl "{key}" is not allowed in the hosts ipc namespace'


@pytest.mark.parametrize("key, field", [("kernel.hostname", "hostname"),
                                        ("kernel.domainname", "domainname")])
def test_uts_sysctls(key, field):
    doc = sysctl(base(), key)
    doc.pop("hostname")
    assert semantic.check_config(doc) == []
    doc[field] = "x"
    assert fails(doc)[1] == (f'sysctl "{key}" is not allowed as it conflicts '
                             f'with the OCI "{field}" field')
    doc.pop(field)
    drop_ns(doc, "uts")
    assert fails(doc)[1] == f'sysctl "{key}" is not in a separate kernel namespace'


@pytest.mark.parametrize("key", ["vm.swappiness", "kernel.foo", "user.max_user_namespaces"])
def test_non_namespaced_sysctls_refused(key):
    assert fails(sysctl(base(), key)) == (f'linux.sysctl["{key}"]',
                                          f'sysctl "{key}" is not in a separate kernel namespace')


# -- time namespace ---------------------------------------------------------------

def test_time_offsets_need_new_time_namespace():
    doc = base()
    doc["linux"]["timeOffsets"] = {"boottime": {"secs": 10}}
    assert fails(doc) == ("linux.timeOffsets",
                          "time offsets specified, but the config has no time namespace")
    doc["linux"]["namespaces"].append({"type": "time", "path": "/proc/9/ns/time"})
    assert fails(doc)[1] == "time offsets cannot be set when joining an existing time namespace"
    del doc["linux"]["namespaces"][-1]["path"]
    assert semantic.check_config(doc) == []


def test_time_offsets_clock_and_nanosecs():
    doc = base()
    doc["linux"]["namespaces"].append({"type": "time"})
    doc["linux"]["timeOffsets"] = {"realtime": {"secs": 1}}
    assert fails(doc) == ("linux.timeOffsets.realtime", 'unknown clock "realtime"')
    doc["linux"]["timeOffsets"] = {"monotonic": {"nanosecs": 1_000_000_000}}
    assert fails(doc) == ("linux.timeOffsets.monotonic.nanosecs",
                          "nanosecs must be less than 1000000000")


# -- filesystem -------------------------------------------------------------------

def test_rootfs_propagation_values():
    doc = base()
    for value in semantic.PROPAGATIONS:
        doc["linux"]["rootfsPropagation"] = value
        assert semantic.check_config(doc) == []
    doc["linux"]["rootfsPropagation"] = "bogus"
    assert fails(doc) == ("linux.rootfsPropagation", "rootfsPropagation=bogus is not supported")


def test_relative_mount_destination_is_a_warning():
    doc = base()
    doc["mounts"].append({"destination": "data/x", "type": "tmpfs", "source": "tmpfs"})
    assert semantic.check_config(doc) == [
        "mount destination data/x is not absolute. Support for non-absolute mount "
        "destinations will be removed in a future release."]


def test_empty_mount_destination_refused():
    # runc 1.1.5 warns, then mounts over the container's / and fails late
    doc = base()
    doc["mounts"].append({"destination": "", "type": "tmpfs", "source": "tmpfs"})
    assert fails(doc) == ("mounts[7].destination", "mount destination must not be empty")


@pytest.mark.parametrize("field", ["maskedPaths", "readonlyPaths"])
def test_masked_and_readonly_paths_absolute(field):
    doc = base()
    doc["linux"][field].append("proc/x")
    index = len(doc["linux"][field]) - 1
    assert fails(doc) == (f"linux.{field}[{index}]", 'path "proc/x" must be absolute')


def test_hook_path_absolute():
    doc = base()
    doc["hooks"] = {"poststart": [{"path": "/bin/true"}, {"path": "hook.sh"}]}
    assert fails(doc) == ("hooks.poststart[1].path", 'hook path "hook.sh" must be absolute')


def test_device_numbers_required_unless_fifo():
    doc = base()
    doc["linux"]["devices"] = [{"path": "/dev/fifo", "type": "p"}]
    assert semantic.check_config(doc) == []
    doc["linux"]["devices"].append({"path": "/dev/x", "type": "c", "major": 1})
    assert fails(doc) == ("linux.devices[1]", "major and minor are required for device type c")


# -- seccomp ------------------------------------------------------------------------

def test_seccomp_errno_only_with_errno_actions():
    doc = base()
    doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                               "syscalls": [{"names": ["a"], "action": "SCMP_ACT_TRACE",
                                             "errnoRet": 1}]}
    assert semantic.check_config(doc) == []
    doc["linux"]["seccomp"]["syscalls"].append({"names": ["b"], "action": "SCMP_ACT_ALLOW",
                                                "errnoRet": 1})
    assert fails(doc) == ("linux.seccomp.syscalls[1].errnoRet",
                          "errnoRet is not supported with action SCMP_ACT_ALLOW")
    doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}
    assert fails(doc)[0] == "linux.seccomp.defaultErrnoRet"


def test_seccomp_listener_metadata_needs_path():
    doc = base()
    doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}
    assert fails(doc)[0] == "linux.seccomp.listenerMetadata"
    doc["linux"]["seccomp"]["listenerPath"] = "/run/agent.sock"
    assert semantic.check_config(doc) == []
