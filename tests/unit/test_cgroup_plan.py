"""plan_cgroups on fake hosts: where the cgroups go, and what is written for
the configs real clients send."""
import copy
import json

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan.cgroups import cgroup_dirs, join_steps, plan_cgroups
from pyrunc.plan.steps import (CreateCgroup, EnableControllers, JoinCgroup, LoadDeviceFilter,
                               Phase, SetCpuMax, SetDevicesV1, SetMemoryLimits, WriteCgroupFile)
from pyrunc.spec.config import Config
from tests.unit.test_cgroup_host import hybrid, legacy, v2

FIXTURES = "/work/shared/fixtures/real-configs"
MiB = 1 << 20


def fixture(name):
    with open(f"{FIXTURES}/{name}") as f:
        return json.load(f)


def config(resources=None, path=None, base=None):
    d = copy.deepcopy(base) if base else {"ociVersion": "1.2.0", "root": {"path": "rootfs"},
                                          "process": {"args": ["sh"]}, "linux": {}}
    if resources is not None:
        d["linux"]["resources"] = resources
    if path is not None:
        d["linux"]["cgroupsPath"] = path
    elif base is None:
        d["linux"].pop("cgroupsPath", None)
    return Config.from_dict(d, "/b")


def writes(steps):
    """{(dir, file): value} of the WriteCgroupFile steps."""
    return {(s.dir, s.file): s.value for s in steps if isinstance(s, WriteCgroupFile)}


def only(steps, kind):
    found = [s for s in steps if isinstance(s, kind)]
    assert len(found) == 1, found
    return found[0]


# --- placement ------------------------------------------------------------------------------

def test_default_path_is_id_below_own_cgroup_on_hybrid():
    steps = plan_cgroups(config(), "c1", host=hybrid())
    assert all(s.phase is Phase.CGROUPS for s in steps)
    dirs = cgroup_dirs(steps)
    assert dirs["memory"] == "/sys/fs/cgroup/memory/process_api/0b9c/c1"
    assert dirs["cpu"] == "/sys/fs/cgroup/cpu/c1"
    assert dirs["name=systemd"] == "/sys/fs/cgroup/systemd/c1"
    assert dirs["unified"] == "/sys/fs/cgroup/unified/c1"
    assert set(dirs) == {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                         "pids", "name=systemd", "unified"}
    mem = next(s for s in steps if isinstance(s, CreateCgroup) and s.keys == ("memory",))
    assert mem.base == "/sys/fs/cgroup/memory/process_api/0b9c"
    assert [s.cpuset for s in steps if isinstance(s, CreateCgroup)].count(True) == 1
    # created first, joined last, every dir once
    assert isinstance(steps[0], CreateCgroup)
    assert steps[-1] == JoinCgroup(tuple(dict.fromkeys(dirs.values())))


def test_absolute_path_is_below_each_hierarchy_root():
    steps = plan_cgroups(config(path="/test/sc-mem"), "c1", host=hybrid())
    dirs = cgroup_dirs(steps)
    assert dirs["memory"] == "/sys/fs/cgroup/memory/test/sc-mem"
    assert all(d.endswith("/test/sc-mem") for d in dirs.values())
    assert {s.base for s in steps if isinstance(s, CreateCgroup)} == \
        {s.dir[:-len("/test/sc-mem")] for s in steps if isinstance(s, CreateCgroup)}


def test_relative_path_is_below_own_cgroup_and_cannot_climb():
    dirs = cgroup_dirs(plan_cgroups(config(path="../../x/y"), "c1", host=legacy()))
    assert dirs["cpu"] == dirs["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct/user.slice/x/y"
    assert dirs["memory"] == "/sys/fs/cgroup/memory/user.slice/user-0.slice/session-1.scope/x/y"
    assert dirs["net_prio"] == "/sys/fs/cgroup/net_cls,net_prio/x/y"
    assert "unified" not in dirs


def test_co_mounted_controllers_share_one_create():
    steps = plan_cgroups(config(path="/a"), "c1", host=legacy())
    creates = [s for s in steps if isinstance(s, CreateCgroup)]
    assert [s.keys for s in creates if "cpu" in s.keys] == [("cpu", "cpuacct")]
    assert len({s.dir for s in creates}) == len(creates)


def test_v2_relative_goes_below_the_parent_of_own_cgroup():
    steps = plan_cgroups(config(path="x"), "c1", host=v2())
    assert cgroup_dirs(steps) == {"unified": "/sys/fs/cgroup/user.slice/user-0.slice/x"}
    assert cgroup_dirs(plan_cgroups(config(), "c1", host=v2())) == \
        {"unified": "/sys/fs/cgroup/user.slice/user-0.slice/c1"}


def test_v2_enables_controllers_down_the_path():
    steps = plan_cgroups(config(path="/a/b/c"), "c1", host=v2())
    assert [s.dir for s in steps if isinstance(s, EnableControllers)] == \
        ["/sys/fs/cgroup", "/sys/fs/cgroup/a", "/sys/fs/cgroup/a/b"]
    create = only(steps, CreateCgroup)
    first_enable = next(i for i, s in enumerate(steps) if isinstance(s, EnableControllers))
    assert steps.index(create) < first_enable


@pytest.mark.parametrize("path", ["/", ".", "..", "a/.."])
def test_paths_naming_the_parent_itself_are_refused(path):
    with pytest.raises(ConfigError, match="linux.cgroupsPath"):
        plan_cgroups(config(path=path), "c1", host=hybrid())


def test_systemd_driver_is_a_clear_error():
    with pytest.raises(ConfigError) as e:
        plan_cgroups(config(path="system.slice:docker:abc"), "c1", systemd=True, host=hybrid())
    assert e.value.path == "linux.cgroupsPath"
    assert "/run/systemd/private: no such file or directory" in str(e.value)
    with pytest.raises(ConfigError, match="slice:prefix:name"):
        plan_cgroups(config(path="/not/systemd"), "c1", systemd=True, host=hybrid())
    with pytest.raises(ConfigError, match="not supported by pyrunc"):
        plan_cgroups(config(path="a:b:c"), "c1", systemd=True, host=hybrid(systemd=True))


def test_slice_syntax_without_systemd_is_a_plain_name():
    dirs = cgroup_dirs(plan_cgroups(config(path="system.slice:docker:abc"), "c1",
                                    host=hybrid()))
    assert dirs["cpu"] == "/sys/fs/cgroup/cpu/system.slice:docker:abc"


def test_devices_hierarchy_is_required_on_v1():
    from pyrunc.record import replace
    h = hybrid()
    h = replace(h, v1=tuple(x for x in h.v1 if "devices" not in x.controllers))
    with pytest.raises(ConfigError, match="devices cgroup controller is not mounted"):
        plan_cgroups(config(), "c1", host=h)


def test_join_steps_for_exec():
    assert join_steps({"cpu": "/a", "cpuacct": "/a", "memory": "/b"}) == [JoinCgroup(("/a", "/b"))]
    assert join_steps({}) == []


# --- real client configs ------------------------------------------------------------------------

def test_ctr_memlimit_config_on_hybrid():
    steps = plan_cgroups(config(base=fixture("ctr-create-memlimit-config.json")), "sc-mem",
                         host=hybrid())
    dirs = cgroup_dirs(steps)
    assert dirs["memory"] == "/sys/fs/cgroup/memory/test/sc-mem"
    mem = only(steps, SetMemoryLimits)
    assert (mem.dir, mem.v2, mem.limit, mem.swap) == (dirs["memory"], False, 64 * MiB, 0)
    assert writes(steps) == {(dirs["cpu"], "cpu.shares"): "1024"}
    devs = only(steps, SetDevicesV1)
    assert devs.dir == dirs["devices"] and devs.default_allow is False
    assert "c 136:* rwm" in devs.rules and "c 1:3 rwm" in devs.rules


def test_ctr_memlimit_config_on_v2():
    steps = plan_cgroups(config(base=fixture("ctr-create-memlimit-config.json")), "sc-mem",
                         host=v2())
    d = "/sys/fs/cgroup/test/sc-mem"
    assert only(steps, SetMemoryLimits) == SetMemoryLimits(d, True, 64 * MiB, 0, False)
    assert writes(steps) == {(d, "cpu.weight"): "39"}
    f = only(steps, LoadDeviceFilter)
    assert f.dir == d and not f.default_allow and "c 5:2 rwm" in f.rules


def test_docker_config_zeros_write_nothing():
    # cpu.shares 0, blockIO.weight 0, disableOOMKiller false: all "unset"
    for host in (hybrid(), v2()):
        steps = plan_cgroups(config(base=fixture("docker-create-config.json")), "x", host=host)
        assert writes(steps) == {}
        assert not [s for s in steps if isinstance(s, (SetMemoryLimits, SetCpuMax))]


def test_podman_pids_limit():
    steps = plan_cgroups(config(base=fixture("podman-create-config.json")), "x", host=hybrid())
    dirs = cgroup_dirs(steps)
    assert dirs["pids"].startswith("/sys/fs/cgroup/pids/libpod_parent/libpod-")
    assert writes(steps) == {(dirs["pids"], "pids.max"): "2048"}
