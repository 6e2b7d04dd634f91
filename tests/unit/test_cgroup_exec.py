"""The cgroup step handlers against an in-memory cgroupfs."""
import errno
import json
import os

import pytest

from pyrunc.errors import ConfigError, RuntimeFailure
from pyrunc.executor import cgroups as h
from pyrunc.executor.base import Context, run_steps
from pyrunc.plan.cgroups import cgroup_dirs, plan_cgroups
from pyrunc.plan.steps import (CreateCgroup, EnableControllers, JoinCgroup, SetCpuMax,
                               SetDevicesV1, SetMemoryLimits, WriteCgroupFile)
from pyrunc.spec.config import Config
from tests.unit.test_cgroup_host import hybrid

MiB = 1 << 20


class FakeCgroupFs:
    """Directories and files; a new directory gets the files `new_files` names.
    `refuse[(path, value)] = errno` makes that write fail."""

    def __init__(self, dirs=(), files=None, new_files=("cgroup.procs",)):
        self.dirs = set(dirs)
        self.files = dict(files or {})
        self.new_files = new_files
        self.writes = []
        self.refuse = {}

    def mkdir(self, path, mode=0o755):
        if path in self.dirs:
            raise FileExistsError(errno.EEXIST, "exists", path)
        if os.path.dirname(path) not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
        self.dirs.add(path)
        for name in self.new_files:
            self.files.setdefault(f"{path}/{name}", "")

    def read_file(self, path):
        if path not in self.files:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
        return self.files[path].encode()

    def write_file(self, path, data):
        if path not in self.files:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
        err = self.refuse.get((path, data)) or self.refuse.get((path, None))
        if err:
            raise OSError(err, os.strerror(err), path)
        self.writes.append((path, data))
        self.files[path] = data


def ctx(fs, pid=4242):
    c = Context(sys=fs, config=None)
    c.extra["child_pid"] = pid
    return c


# --- create / enable / join ----------------------------------------------------------

def test_create_makes_missing_levels_and_records_them():
    fs = FakeCgroupFs(dirs={"/cg", "/cg/a"})
    c = ctx(fs)
    h.create_cgroup(CreateCgroup("/cg/a/b/c", "/cg", ("memory",)), c)
    assert {"/cg/a/b", "/cg/a/b/c"} <= fs.dirs
    assert c.extra["cgroup_created"] == ["/cg/a/b", "/cg/a/b/c"]


def test_create_copies_cpuset_from_the_parent_at_each_level():
    fs = FakeCgroupFs(dirs={"/cs"}, files={"/cs/cpuset.cpus": "0-3", "/cs/cpuset.mems": "0"},
                      new_files=("cgroup.procs", "cpuset.cpus", "cpuset.mems"))
    h.create_cgroup(CreateCgroup("/cs/p/c", "/cs", ("cpuset",), cpuset=True), ctx(fs))
    assert fs.files["/cs/p/cpuset.cpus"] == "0-3" and fs.files["/cs/p/c/cpuset.mems"] == "0"


def test_existing_leaf_with_processes_is_refused_and_not_recorded():
    fs = FakeCgroupFs(dirs={"/cg", "/cg/x"}, files={"/cg/x/cgroup.procs": "12\n13\n"})
    c = ctx(fs)
    with pytest.raises(ConfigError, match="not empty: 2 process"):
        h.create_cgroup(CreateCgroup("/cg/x", "/cg", ("pids",)), c)
    assert c.extra["cgroup_created"] == []
    fs.files["/cg/x/cgroup.procs"] = ""
    h.create_cgroup(CreateCgroup("/cg/x", "/cg", ("pids",)), c)   # empty: joined, not ours


def test_create_failure_is_a_runtime_failure():
    fs = FakeCgroupFs(dirs=set())
    with pytest.raises(RuntimeFailure, match="cannot create cgroup /cg/x"):
        h.create_cgroup(CreateCgroup("/cg/x", "/cg", ("pids",)), ctx(fs))


def test_enable_controllers_all_at_once_else_one_by_one():
    fs = FakeCgroupFs(dirs={"/r"}, files={"/r/cgroup.controllers": "cpu io memory pids",
                                          "/r/cgroup.subtree_control": "cpu"})
    h.enable_controllers(EnableControllers("/r"), ctx(fs))
    assert fs.writes == [("/r/cgroup.subtree_control", "+io +memory +pids")]
    fs.writes.clear()
    fs.files["/r/cgroup.subtree_control"] = ""
    fs.refuse[("/r/cgroup.subtree_control", "+cpu +io +memory +pids")] = errno.EBUSY
    fs.refuse[("/r/cgroup.subtree_control", "+io")] = errno.EBUSY
    h.enable_controllers(EnableControllers("/r"), ctx(fs))
    assert fs.writes == [("/r/cgroup.subtree_control", v) for v in ("+cpu", "+memory", "+pids")]


def test_join_writes_the_child_pid_everywhere():
    fs = FakeCgroupFs(files={"/a/cgroup.procs": "", "/b/cgroup.procs": ""})
    h.join_cgroup(JoinCgroup(("/a", "/b")), ctx(fs, pid=77))
    assert fs.writes == [("/a/cgroup.procs", "77"), ("/b/cgroup.procs", "77")]
    with pytest.raises(RuntimeFailure, match="cannot join cgroup /c"):
        h.join_cgroup(JoinCgroup(("/c",)), ctx(fs))


# --- writes ----------------------------------------------------------------------------

def test_write_falls_back_when_the_file_is_missing():
    fs = FakeCgroupFs(files={"/d/io.weight": ""})
    h.write_cgroup_file(WriteCgroupFile("/d", "io.bfq.weight", "500", "f",
                                        fallback=(("io.weight", "4950"),)), ctx(fs))
    assert fs.writes == [("/d/io.weight", "4950")]


def test_write_missing_everywhere_names_the_field_unless_optional():
    fs = FakeCgroupFs()
    with pytest.raises(ConfigError) as e:
        h.write_cgroup_file(WriteCgroupFile("/d", "a.b", "1", "linux.resources.x"), ctx(fs))
    assert e.value.path == "linux.resources.x" and "a.b does not exist" in str(e.value)
    h.write_cgroup_file(WriteCgroupFile("/d", "a.b", "1", "f", optional=True), ctx(fs))


def test_kernel_refusal_names_the_field():
    fs = FakeCgroupFs(files={"/d/cpuset.cpus": ""})
    fs.refuse[("/d/cpuset.cpus", "9")] = errno.EINVAL
    with pytest.raises(ConfigError) as e:
        h.write_cgroup_file(WriteCgroupFile("/d", "cpuset.cpus", "9",
                                            "linux.resources.cpu.cpus"), ctx(fs))
    assert str(e.value) == ('linux.resources.cpu.cpus: failed to write "9" to '
                            '/d/cpuset.cpus: invalid argument')


# --- memory --------------------------------------------------------------------------------

def mem_v1(limit="9223372036854771712", swap="9223372036854771712"):
    return FakeCgroupFs(files={"/m/memory.limit_in_bytes": limit,
                               "/m/memory.memsw.limit_in_bytes": swap,
                               "/m/memory.usage_in_bytes": str(20 * MiB),
                               "/m/memory.max_usage_in_bytes": str(30 * MiB)})


def test_v1_memory_grows_swap_first_when_it_must():
    fs = mem_v1(limit=str(64 * MiB), swap=str(64 * MiB))
    h.set_memory_limits(SetMemoryLimits("/m", False, 128 * MiB, 256 * MiB), ctx(fs))
    assert [w[0].rsplit("/", 1)[1] for w in fs.writes] == \
        ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_v1_memory_shrinks_limit_first():
    fs = mem_v1(limit=str(128 * MiB), swap=str(256 * MiB))
    h.set_memory_limits(SetMemoryLimits("/m", False, 32 * MiB, 64 * MiB), ctx(fs))
    assert fs.writes == [("/m/memory.limit_in_bytes", str(32 * MiB)),
                         ("/m/memory.memsw.limit_in_bytes", str(64 * MiB))]


def test_v1_unlimited_memory_lifts_swap_too():
    fs = mem_v1(limit=str(64 * MiB), swap=str(64 * MiB))
    h.set_memory_limits(SetMemoryLimits("/m", False, -1, 0), ctx(fs))
    assert fs.writes == [("/m/memory.memsw.limit_in_bytes", "-1"),
                         ("/m/memory.limit_in_bytes", "-1")]


def test_v1_busy_limit_reports_usage():
    fs = mem_v1()
    fs.refuse[("/m/memory.limit_in_bytes", None)] = errno.EBUSY
    with pytest.raises(ConfigError) as e:
        h.set_memory_limits(SetMemoryLimits("/m", False, MiB, 0), ctx(fs))
    assert e.value.path == "linux.resources.memory.limit"
    assert f"current usage: {20 * MiB}, peak usage: {30 * MiB}" in str(e.value)


def test_v1_check_before_update_and_missing_swap_accounting():
    fs = mem_v1()
    with pytest.raises(ConfigError, match="below the current usage"):
        h.set_memory_limits(SetMemoryLimits("/m", False, 10 * MiB, 0, True), ctx(fs))
    del fs.files["/m/memory.memsw.limit_in_bytes"]
    with pytest.raises(ConfigError, match="swap accounting") as e:
        h.set_memory_limits(SetMemoryLimits("/m", False, 64 * MiB, 128 * MiB), ctx(fs))
    assert e.value.path == "linux.resources.memory.swap"
    h.set_memory_limits(SetMemoryLimits("/m", False, -1, 0), ctx(fs))   # no swap to lift


def test_v2_memory():
    fs = FakeCgroupFs(files={"/u/memory.max": "max", "/u/memory.swap.max": "max",
                             "/u/memory.current": str(5 * MiB)})
    h.set_memory_limits(SetMemoryLimits("/u", True, 64 * MiB, 96 * MiB), ctx(fs))
    assert fs.writes == [("/u/memory.max", str(64 * MiB)), ("/u/memory.swap.max", str(32 * MiB))]
    fs.writes.clear()
    # update with swap alone: the current limit stands in
    h.set_memory_limits(SetMemoryLimits("/u", True, 0, 128 * MiB), ctx(fs))
    assert fs.writes == [("/u/memory.swap.max", str(64 * MiB))]
    fs.writes.clear()
    h.set_memory_limits(SetMemoryLimits("/u", True, -1, 0), ctx(fs))
    assert fs.writes == [("/u/memory.max", "max"), ("/u/memory.swap.max", "max")]
    fs.files["/u/memory.max"] = "max"
    with pytest.raises(ConfigError, match="needs a memory limit"):
        h.set_memory_limits(SetMemoryLimits("/u", True, 0, 128 * MiB), ctx(fs))


def test_cpu_max_keeps_the_half_not_given():
    fs = FakeCgroupFs(files={"/u/cpu.max": "max 100000"})
    h.set_cpu_max(SetCpuMax("/u", 20000, 0), ctx(fs))
    assert fs.files["/u/cpu.max"] == "20000 100000"
    h.set_cpu_max(SetCpuMax("/u", 0, 50000), ctx(fs))
    assert fs.files["/u/cpu.max"] == "20000 50000"
    h.set_cpu_max(SetCpuMax("/u", -1, 0), ctx(fs))
    assert fs.files["/u/cpu.max"] == "max 50000"


# --- devices ---------------------------------------------------------------------------------

def test_devices_v1_fresh_cgroup_resets_then_allows():
    fs = FakeCgroupFs(files={"/d/devices.list": "a *:* rwm\n", "/d/devices.allow": "",
                             "/d/devices.deny": ""})
    h.set_devices_v1(SetDevicesV1("/d", False, ("c 1:3 rwm", "c *:* m")), ctx(fs))
    assert fs.writes == [("/d/devices.deny", "a"), ("/d/devices.allow", "c 1:3 rwm"),
                         ("/d/devices.allow", "c *:* m")]


def test_devices_v1_update_writes_only_the_difference():
    fs = FakeCgroupFs(files={"/d/devices.list": "c 1:3 rwm\nc 1:5 rwm\n", "/d/devices.allow": "",
                             "/d/devices.deny": ""})
    h.set_devices_v1(SetDevicesV1("/d", False, ("c 1:3 rwm", "c 1:9 rwm")), ctx(fs))
    assert fs.writes == [("/d/devices.deny", "c 1:5 rwm"), ("/d/devices.allow", "c 1:9 rwm")]


# --- a whole plan ----------------------------------------------------------------------------

def test_ctr_memlimit_plan_on_a_fake_hybrid_host():
    with open("/work/shared/fixtures/real-configs/ctr-create-memlimit-config.json") as f:
        config = Config.from_dict(json.load(f), "/b")
    steps = plan_cgroups(config, "sc-mem", host=hybrid())
    dirs = cgroup_dirs(steps)
    roots = {s.base for s in steps if isinstance(s, CreateCgroup)}
    names = ("cgroup.procs", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
             "cpu.shares", "devices.list", "devices.allow", "devices.deny", "cpuset.cpus",
             "cpuset.mems")
    files = {f"{r}/{n}": "" for r in roots for n in names}
    files.update({f"{r}/devices.list": "a *:* rwm" for r in roots})
    files.update({f"{r}/cpuset.cpus": "0-1" for r in roots})
    fs = FakeCgroupFs(dirs=roots, files=files, new_files=names)
    c = ctx(fs, pid=999)
    orig_mkdir = fs.mkdir

    def mkdir(path, mode=0o755):   # a new cgroup inherits these values
        orig_mkdir(path, mode)
        fs.files[f"{path}/devices.list"] = "a *:* rwm"
        fs.files[f"{path}/memory.limit_in_bytes"] = "9223372036854771712"
        fs.files[f"{path}/memory.memsw.limit_in_bytes"] = "9223372036854771712"
    fs.mkdir = mkdir
    run_steps(steps, c)
    assert sorted(c.extra["cgroup_created"]) == sorted(
        {d for d in dirs.values()} | {os.path.dirname(d) for d in dirs.values()})
    assert fs.files[f"{dirs['memory']}/memory.limit_in_bytes"] == str(64 * MiB)
    assert fs.files[f"{dirs['cpu']}/cpu.shares"] == "1024"
    assert fs.files[f"{dirs['cpuset']}/cpuset.cpus"] == "0-1"
    assert ("%s/devices.deny" % dirs["devices"], "a") in fs.writes
    assert all(fs.files[f"{d}/cgroup.procs"] == "999" for d in dirs.values())
