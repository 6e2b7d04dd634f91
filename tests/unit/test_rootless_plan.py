"""Rootless in the plan and the executor: which cgroups a rootless create
uses, how the parent writes id maps, and the dumpable window of the child."""
import os
import posix

import pytest

from pyrunc.errors import ConfigError
from pyrunc.executor import namespaces
from pyrunc.plan.cgroups import cgroup_dirs, plan_cgroups
from pyrunc.plan.steps import (CreateCgroup, CreateUserNamespace, EnableControllers, JoinCgroup,
                               LoadDeviceFilter, SetDevicesV1, SetMemoryLimits, WriteCgroupFile)
from pyrunc.spec.config import IdMapping
from tests.doubles import RecordingSys
from tests.unit.test_cgroup_host import hybrid, v2
from tests.unit.test_cgroup_plan import config

MiB = 1 << 20


def kinds(steps):
    return [type(s) for s in steps]


# --- cgroups ---------------------------------------------------------------------

def test_rootless_without_access_plans_no_cgroup_at_all():
    seen = []
    steps = plan_cgroups(config(), "c1", host=hybrid(), rootless=True,
                         usable=lambda d, base: seen.append((d, base)) or False)
    assert steps == []
    assert ("/sys/fs/cgroup/memory/process_api/0b9c/c1",
            "/sys/fs/cgroup/memory/process_api/0b9c") in seen
    assert len(seen) == 10     # every hierarchy was asked about


def test_rootless_uses_the_delegated_hierarchies_only():
    ok = {"/sys/fs/cgroup/pids/c1", "/sys/fs/cgroup/systemd/c1"}
    steps = plan_cgroups(config(), "c1", host=hybrid(), rootless=True,
                         usable=lambda d, base: d in ok)
    assert cgroup_dirs(steps) == {"pids": "/sys/fs/cgroup/pids/c1",
                                  "name=systemd": "/sys/fs/cgroup/systemd/c1"}
    join = steps[-1]
    assert isinstance(join, JoinCgroup) and set(join.dirs) == ok
    # the device allowlist is never written rootless (runc ignores it too)
    assert SetDevicesV1 not in kinds(steps)


def test_rootless_limit_on_a_skipped_cgroup_fails_like_runc():
    with pytest.raises(ConfigError, match=r"^linux\.resources: cannot set memory limit: "
                                          r"container could not join or create cgroup"):
        plan_cgroups(config({"memory": {"limit": 64 * MiB}}), "c1", host=hybrid(),
                     rootless=True, usable=lambda d, base: False)


def test_rootless_limit_on_a_delegated_cgroup_is_kept():
    mem = "/sys/fs/cgroup/memory/process_api/0b9c/c1"
    steps = plan_cgroups(config({"memory": {"limit": 64 * MiB}}), "c1", host=hybrid(),
                         rootless=True, usable=lambda d, base: d == mem)
    assert cgroup_dirs(steps) == {"memory": mem}
    assert any(isinstance(s, SetMemoryLimits) and s.dir == mem for s in steps)


def test_rootless_device_rules_alone_do_not_fail():
    steps = plan_cgroups(config({"devices": [{"allow": False, "access": "rwm"}]}), "c1",
                         host=hybrid(), rootless=True, usable=lambda d, base: False)
    assert steps == []


def test_rootless_explicit_path_is_kept_as_asked():
    def never(d, base):
        raise AssertionError("an explicit cgroupsPath is not probed")
    steps = plan_cgroups(config(path="/mine/c1"), "c1", host=hybrid(), rootless=True,
                         usable=never)
    dirs = cgroup_dirs(steps)
    assert dirs["memory"] == "/sys/fs/cgroup/memory/mine/c1" and len(dirs) == 10
    assert isinstance(steps[-1], JoinCgroup)
    assert SetDevicesV1 not in kinds(steps)


def test_rootless_v2_delegated_subtree():
    h = v2()
    base = "/sys/fs/cgroup/user.slice/user-0.slice"
    steps = plan_cgroups(config({"pids": {"limit": 10}}), "c1", host=h, rootless=True,
                         usable=lambda d, b: b == base)
    assert cgroup_dirs(steps) == {"unified": f"{base}/c1"}
    assert LoadDeviceFilter not in kinds(steps)
    assert EnableControllers in kinds(steps)
    w = [s for s in steps if isinstance(s, WriteCgroupFile)]
    assert [(s.file, s.value) for s in w] == [("pids.max", "10")]


def test_rootless_v2_skipped_makes_nothing():
    steps = plan_cgroups(config(), "c1", host=v2(), rootless=True, usable=lambda d, b: False)
    assert steps == []


def test_root_is_unchanged():
    steps = plan_cgroups(config(), "c1", host=hybrid(), rootless=False,
                         usable=lambda d, b: False)
    assert len([s for s in steps if isinstance(s, CreateCgroup)]) == 10
    assert SetDevicesV1 in kinds(steps)


# --- id maps, parent side -------------------------------------------------------------

def m(c, h, s):
    return IdMapping(c, h, s)


@pytest.fixture
def io(monkeypatch):
    """Record what write_id_maps does instead of doing it, as uid/gid 1000."""
    log = []

    class File:
        def __init__(self, path, mode):
            self.path = path

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def write(self, data):
            log.append(("write", self.path, data))

    from pyrunc import rootless
    monkeypatch.setattr(namespaces, "open", File, raising=False)
    monkeypatch.setattr(rootless, "deny_setgroups", lambda pid: log.append(("deny", pid)))
    monkeypatch.setattr(rootless, "run_helper",
                        lambda name, pid, maps, what: log.append((name, pid, maps)))
    monkeypatch.setattr(posix, "geteuid", lambda: 1000)
    monkeypatch.setattr(posix, "getegid", lambda: 1000)
    return log


def test_own_ids_only_are_written_directly_with_setgroups_denied_in_between(io):
    namespaces.write_id_maps(5, (m(0, 1000, 1),), (m(0, 1000, 1),))
    assert io == [("write", "/proc/5/uid_map", "0 1000 1\n"), ("deny", 5),
                  ("write", "/proc/5/gid_map", "0 1000 1\n")]


def test_subordinate_ranges_go_through_the_helpers(io):
    uids = (m(0, 1000, 1), m(1, 100000, 65536))
    gids = (m(0, 1000, 1), m(1, 200000, 65536))
    namespaces.write_id_maps(5, uids, gids)
    assert io == [("newuidmap", 5, uids), ("newgidmap", 5, gids)]   # setgroups stays allowed


def test_mixed_own_uid_and_subordinate_gids(io):
    gids = (m(0, 1000, 1), m(1, 200000, 10))
    namespaces.write_id_maps(5, (m(0, 1000, 1),), gids)
    assert io == [("write", "/proc/5/uid_map", "0 1000 1\n"), ("newgidmap", 5, gids)]


def test_someone_elses_id_needs_the_helper(io):
    namespaces.write_id_maps(5, (m(0, 0, 1),), (m(0, 1000, 1),))
    assert io[0] == ("newuidmap", 5, (m(0, 0, 1),))


def test_root_writes_everything_itself(io, monkeypatch):
    monkeypatch.setattr(posix, "geteuid", lambda: 0)
    monkeypatch.setattr(posix, "getegid", lambda: 0)
    namespaces.write_id_maps(5, (m(0, 100000, 65536),), (m(0, 100000, 65536), m(70000, 7, 1)))
    assert io == [("write", "/proc/5/uid_map", "0 100000 65536\n"),
                  ("write", "/proc/5/gid_map", "0 100000 65536\n70000 7 1\n")]


# --- the child's dumpable window ------------------------------------------------------

class Sync:
    def __init__(self, sys):
        self.sys = sys

    def send(self, kind, **kw):
        self.sys.calls.append(("SEND", (kind,)))

    def expect(self, kind):
        self.sys.calls.append(("EXPECT", (kind,)))
        return {"t": kind}


def _run_create_userns(monkeypatch, euid):
    from pyrunc.executor.base import Context
    sys = RecordingSys()
    monkeypatch.setattr(posix, "geteuid", lambda: euid)
    ctx = Context(sys=sys, config=None, userns=True)
    ctx.extra["sync"] = Sync(sys)
    namespaces.create_user_namespace(CreateUserNamespace((m(0, euid, 1),), (m(0, euid, 1),)),
                                     ctx)
    return sys.calls


def test_unprivileged_child_is_dumpable_only_while_the_maps_are_written(monkeypatch):
    calls = _run_create_userns(monkeypatch, 1000)
    D = RecordingSys.C.PR_SET_DUMPABLE
    assert [c for c in calls if c[0] != "setresgid" and c[0] != "setresuid"] == [
        ("unshare", (RecordingSys.C.CLONE_NEWUSER,)), ("prctl", (D, 1)),
        ("SEND", ("userns",)), ("EXPECT", ("ok",)), ("prctl", (D, 0))]


def test_root_child_never_becomes_dumpable(monkeypatch):
    calls = _run_create_userns(monkeypatch, 0)
    assert not [c for c in calls if c[0] == "prctl"]


# --- the global --rootless flag ------------------------------------------------------

@pytest.mark.parametrize("value, want", [(None, None), ("auto", None), ("AUTO", None),
                                         ("true", True), ("1", True), ("T", True),
                                         ("false", False), ("0", False), ("False", False)])
def test_rootless_flag_reads_like_runc(value, want):
    from pyrunc.cli import rootless_flag
    assert rootless_flag({"rootless": value} if value is not None else {}) is want


def test_a_bad_rootless_flag_is_a_usage_error():
    from pyrunc.cli import rootless_flag
    from pyrunc.errors import UsageError
    with pytest.raises(UsageError, match='invalid --rootless value "yes"'):
        rootless_flag({"rootless": "yes"})


@pytest.mark.parametrize("flag, cgroups", [("true", False), ("false", True)])
def test_rootless_flag_reaches_the_cgroup_plan(monkeypatch, tmp_path, capsys, flag, cgroups):
    """--rootless=true skips the cgroups we may not use, even as root; false never does."""
    import json as _json
    from pyrunc import rootless
    from pyrunc.cli import main
    from pyrunc.spec.default import default_spec
    monkeypatch.setattr(rootless, "cgroup_usable", lambda d, base: False)
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(_json.dumps(default_spec()))
    assert main(["--rootless", flag, "plan", "--bundle", str(tmp_path)]) == 0
    assert ("CreateCgroup(" in capsys.readouterr().out) is cgroups
