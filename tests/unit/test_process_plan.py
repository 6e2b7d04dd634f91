"""plan_process on the configs real clients wrote, and on the edge cases runc defines."""
import json
from pathlib import Path

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan.process import normalize_env, plan_process
from pyrunc.plan.steps import (
    BringUpLoopback, Chdir, CloseFds, DropBoundingSet, Exec, MakeCwd, Phase, ResolveExecutable,
    SetCapabilities, SetDomainname, SetHostname, SetNoNewPrivs, SetOomScoreAdj, SetRlimit,
    SetUser, WriteSysctl,
)
from pyrunc.spec.config import Config

REAL = Path("/work/shared/fixtures/real-configs")
DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def real(name):
    path = REAL / f"{name}-create-config.json"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return Config.from_dict(json.loads(path.read_text()), "/tmp/bundle")


def cfg(process=None, **top):
    proc = {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin"]}
    proc.update(process or {})
    d = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": proc,
         "linux": top.pop("linux", {})}
    d.update(top)
    return Config.from_dict(d, "/tmp/bundle")


def types(steps):
    return [type(s) for s in steps]


def test_docker():
    container, start = plan_process(real("docker"), preserve_fds=0, userns=False)
    assert types(container) == [SetHostname, WriteSysctl, WriteSysctl, BringUpLoopback,
                                SetOomScoreAdj, Chdir, DropBoundingSet, SetUser, Chdir,
                                SetCapabilities, ResolveExecutable]
    assert container[0] == SetHostname("68208d8cf31a")
    assert container[1:3] == [WriteSysctl("net.ipv4.ip_unprivileged_port_start", "0"),
                              WriteSysctl("net.ipv4.ping_group_range", "0 2147483647")]
    assert container[4] == SetOomScoreAdj(0)
    assert container[5] == Chdir("/") and container[8] == Chdir("/", after_user=True)
    assert set(container[6].keep) == set(DEFAULT_CAPS)
    assert container[7] == SetUser(0, 0, (0,), None)
    caps = container[9]
    assert set(caps.effective) == set(caps.permitted) == set(DEFAULT_CAPS)
    assert caps.inheritable == () and caps.ambient == ()     # CVE-2022-29162
    assert container[10] == ResolveExecutable("sleep", PATH)
    # docker asks for no NNP
    assert start == [CloseFds(3), Exec(("sleep", "1000"),
                                       (f"PATH={PATH}", "HOSTNAME=68208d8cf31a"))]
    assert all(s.phase is Phase.CONTAINER for s in container)
    assert all(s.phase is Phase.START for s in start)


def test_podman():
    container, start = plan_process(real("podman"), preserve_fds=0, userns=False)
    assert SetRlimit("RLIMIT_NOFILE", 20000, 20000) in container
    assert SetRlimit("RLIMIT_NPROC", 32768, 32768) in container
    assert SetUser(0, 0, (), 18) in container             # podman's umask 0022
    assert not any(isinstance(s, (SetOomScoreAdj, WriteSysctl)) for s in container)
    exec_ = start[-1]
    assert exec_.args == ("echo", "hello-plain")
    assert "HOME=/root" in exec_.env and "container=podman" in exec_.env


def test_ctr_with_no_new_privileges_and_preserved_fds():
    container, start = plan_process(real("ctr"), preserve_fds=2, userns=False)
    assert not any(isinstance(s, SetHostname) for s in container)
    assert types(start) == [SetNoNewPrivs, CloseFds, Exec]
    assert start[1] == CloseFds(5)


def test_identity_steps_come_last_in_runc_order():
    container, _ = plan_process(real("docker"), preserve_fds=0, userns=False)
    names = [type(s).__name__ for s in container]
    assert names[-6:] == ["Chdir", "DropBoundingSet", "SetUser", "Chdir", "SetCapabilities",
                          "ResolveExecutable"]


def test_absent_capabilities_mean_no_capabilities_at_all():
    # checked against runc 1.1.5: no "capabilities" -> every set, bounding too, empty
    c = cfg()
    assert c.process.capabilities is None
    container, _ = plan_process(c, preserve_fds=0, userns=False)
    assert DropBoundingSet(()) in container
    assert SetCapabilities((), (), (), ()) in container


def test_omitted_sets_are_empty_and_ambient_kept():
    c = cfg({"capabilities": {"bounding": ["CAP_KILL"], "ambient": ["CAP_KILL"]}})
    container, _ = plan_process(c, preserve_fds=0, userns=False)
    assert SetCapabilities((), (), (), ("CAP_KILL",)) in container
    assert DropBoundingSet(("CAP_KILL",)) in container


def test_loopback_only_for_a_new_network_namespace():
    def has_lo(namespaces):
        c = cfg(linux={"namespaces": namespaces})
        return BringUpLoopback() in plan_process(c, preserve_fds=0, userns=False)[0]
    assert has_lo([{"type": "network"}])
    assert not has_lo([{"type": "network", "path": "/proc/1/ns/net"}])
    assert not has_lo([{"type": "mount"}])


def test_hostname_domainname_and_missing_cwd():
    c = cfg({"cwd": "/work/dir"}, hostname="h", domainname="d")
    container, _ = plan_process(c, preserve_fds=0, userns=False)
    # a missing cwd is made after the mounts, before pivot_root (as runc does)
    assert container[0] == MakeCwd("/work/dir") and container[0].phase is Phase.ROOTFS
    assert container[1:3] == [SetHostname("h"), SetDomainname("d")]
    assert all(s.phase is Phase.CONTAINER for s in container[1:])


def test_for_exec_leaves_container_wide_settings_alone():
    c = cfg({"cwd": "/w"}, hostname="h", linux={"namespaces": [{"type": "network"}],
                                                 "sysctl": {"a.b": "1"}})
    container, _ = plan_process(c, preserve_fds=0, userns=False, for_exec=True)
    assert not any(isinstance(s, (SetHostname, WriteSysctl, BringUpLoopback, MakeCwd))
                   for s in container)
    assert Chdir("/w") in container


def test_path_env_for_lookup_absent_path_is_empty():
    # runc 1.1.5: without PATH, a bare name is "not found in $PATH"
    container, _ = plan_process(cfg({"env": ["A=1"]}), preserve_fds=0, userns=False)
    assert container[-1] == ResolveExecutable("sh", "")


def test_bad_rlimit_type():
    with pytest.raises(ConfigError, match="wrong rlimit value: RLIMIT_BOGUS"):
        plan_process(cfg({"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}),
                     preserve_fds=0, userns=False)


def test_unmapped_user_in_user_namespace():
    c = cfg({"user": {"uid": 5000, "gid": 0}},
            linux={"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}],
                   "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}]})
    with pytest.raises(ConfigError, match="cannot set uid to unmapped user"):
        plan_process(c, preserve_fds=0, userns=True)
    plan_process(c, preserve_fds=0, userns=False)   # no userns: nothing to check


def test_args_and_cwd_are_required_sane():
    with pytest.raises(ConfigError, match="args"):
        plan_process(cfg({"args": []}), preserve_fds=0, userns=False)
    with pytest.raises(ConfigError, match="absolute"):
        plan_process(cfg({"cwd": "rel"}), preserve_fds=0, userns=False)


def test_env_duplicates_keep_first_position_last_value():
    # what runc 1.1.5 gave the program for this env
    assert normalize_env(("PATH=/bin", "A=1", "B=2", "A=3", "X=1=2")) == (
        "PATH=/bin", "A=3", "B=2", "X=1=2")


@pytest.mark.parametrize("entry, words", [
    ("NOEQ", 'invalid environment variable: "NOEQ"'),
    ("=x", 'environment variable name can\'t be empty: "=x"'),
    ("A=b\0c", 'environment variable value can\'t contain null(\\x00): "A=b\\x00c"'),
])
def test_env_errors_in_runcs_words(entry, words):
    with pytest.raises(ConfigError) as info:
        normalize_env(("PATH=/bin", entry))
    assert info.value.message == words
