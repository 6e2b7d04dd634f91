"""Every linux.resources field on v1 and on v2: the files and values written,
the v1 -> v2 conversions, "zero means unset", and errors naming the field."""
import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan.resources import Target, plan_resources
from pyrunc.plan.resources_v2 import blkio_to_io_weight, shares_to_weight, swap_v2
from pyrunc.plan.steps import (LoadDeviceFilter, SetCpuMax, SetDevicesV1, SetMemoryLimits,
                               WriteCgroupFile)

MiB = 1 << 20
V1_KEYS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
           "hugetlb", "net_cls", "net_prio", "rdma")
V1 = Target(dirs={k: f"/cg/{k}/c" for k in V1_KEYS}, v2=False, hugepage_sizes=("2MB", "1GB"))
V1_BARE = Target(dirs={k: f"/cg/{k}/c" for k in ("cpu", "memory", "devices", "pids")}, v2=False)
V2 = Target(dirs={"unified": "/cg/c"}, v2=True, hugepage_sizes=("2MB", "1GB"),
            v2_controllers=("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"))


def writes(steps):
    return [(s.dir.rsplit("/", 2)[-2] if s.dir.startswith("/cg/") and s.dir != "/cg/c" else "",
             s.file, s.value) for s in steps if isinstance(s, WriteCgroupFile)]


def files(steps):
    return {s.file: s.value for s in steps if isinstance(s, WriteCgroupFile)}


def refused(res, target, field):
    with pytest.raises(ConfigError) as e:
        plan_resources(res, target)
    assert e.value.path == field, str(e.value)
    return str(e.value)


# --- v1 ---------------------------------------------------------------------------------

def test_v1_every_field():
    res = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB,
                   "swappiness": 10, "kernel": 8 * MiB, "kernelTCP": MiB,
                   "disableOOMKiller": True, "useHierarchy": True},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "burst": 5000,
                "realtimeRuntime": 950, "realtimePeriod": 1000, "cpus": "0-1", "mems": "0",
                "idle": 1},
        "pids": {"limit": 99},
        "blockIO": {"weight": 300, "leafWeight": 200,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 400}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2000}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 40}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}],
        "network": {"classID": 0x100001, "priorities": [{"name": "eth0", "priority": 5}]},
        "rdma": {"mlx5_0": {"hcaHandles": 3}},
    }
    steps = plan_resources(res, V1)
    assert writes(steps) == [
        ("cpuset", "cpuset.cpus", "0-1"), ("cpuset", "cpuset.mems", "0"),
        ("memory", "memory.soft_limit_in_bytes", str(32 * MiB)),
        ("memory", "memory.swappiness", "10"),
        ("memory", "memory.kmem.limit_in_bytes", str(8 * MiB)),
        ("memory", "memory.kmem.tcp.limit_in_bytes", str(MiB)),
        ("memory", "memory.oom_control", "1"), ("memory", "memory.use_hierarchy", "1"),
        ("cpu", "cpu.shares", "512"), ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "20000"), ("cpu", "cpu.cfs_burst_us", "5000"),
        ("cpu", "cpu.rt_period_us", "1000"), ("cpu", "cpu.rt_runtime_us", "950"),
        ("cpu", "cpu.idle", "1"),
        ("pids", "pids.max", "99"),
        ("blkio", "blkio.weight", "300"), ("blkio", "blkio.leaf_weight", "200"),
        ("blkio", "blkio.weight_device", "8:0 500"),
        ("blkio", "blkio.leaf_weight_device", "8:0 400"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1000"),
        ("blkio", "blkio.throttle.write_bps_device", "8:0 2000"),
        ("blkio", "blkio.throttle.read_iops_device", "8:0 30"),
        ("blkio", "blkio.throttle.write_iops_device", "8:0 40"),
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", str(4 * MiB)),
        ("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", str(4 * MiB)),
        ("net_cls", "net_cls.classid", str(0x100001)),
        ("net_prio", "net_prio.ifpriomap", "eth0 5"),
        ("rdma", "rdma.max", "mlx5_0 hca_handle=3 hca_object=max"),
    ]
    mem = [s for s in steps if isinstance(s, SetMemoryLimits)]
    assert mem == [SetMemoryLimits("/cg/memory/c", False, 64 * MiB, 128 * MiB, False)]
    assert [s for s in steps if isinstance(s, SetDevicesV1)][0].dir == "/cg/devices/c"
    by_file = {s.file: s for s in steps if isinstance(s, WriteCgroupFile)}
    # CFQ's file first, BFQ's when the kernel has only that
    assert by_file["blkio.weight"].fallback == (("blkio.bfq.weight", "300"),)
    assert by_file["blkio.weight_device"].fallback == (("blkio.bfq.weight_device", "8:0 500"),)
    assert by_file["hugetlb.2MB.rsvd.limit_in_bytes"].optional
    assert by_file["memory.kmem.limit_in_bytes"].field == "linux.resources.memory.kernel"


def test_v1_unlimited_values():
    steps = plan_resources({"memory": {"limit": -1}, "cpu": {"quota": -1},
                            "pids": {"limit": -1}}, V1)
    assert files(steps) == {"cpu.cfs_quota_us": "-1", "pids.max": "max"}
    assert [s.limit for s in steps if isinstance(s, SetMemoryLimits)] == [-1]


@pytest.mark.parametrize("res,field", [
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}, "linux.resources.hugepageLimits[0]"),
    ({"network": {"classID": 7}}, "linux.resources.network.classID"),
    ({"network": {"priorities": [{"name": "lo", "priority": 1}]}},
     "linux.resources.network.priorities[0]"),
    ({"rdma": {"mlx": {"hcaObjects": 1}}}, "linux.resources.rdma.mlx"),
    ({"cpu": {"cpus": "1"}}, "linux.resources.cpu.cpus"),
    ({"blockIO": {"weight": 100}}, "linux.resources.blockIO.weight"),
])
def test_v1_controller_not_mounted_names_the_field(res, field):
    text = refused(res, V1_BARE, field)
    assert "cgroup controller is not mounted" in text


def test_v1_unified_is_refused():
    refused({"unified": {"memory.high": "1"}}, V1, "linux.resources.unified")


# --- v2 ---------------------------------------------------------------------------------

def test_v2_every_field_converted():
    res = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000,
                "cpus": "1", "mems": "0", "idle": 0},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500,
                    "weightDevice": [{"major": 8, "minor": 16, "weight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
        "hugepageLimits": [{"pageSize": "1GB", "limit": 0}],
        "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 4}},
        "unified": {"memory.high": "50000000", "cgroup.max.depth": "3"},
    }
    steps = plan_resources(res, V2)
    got = [(s.file, s.value) for s in steps if isinstance(s, WriteCgroupFile)]
    assert got == [
        ("cpuset.cpus", "1"), ("cpuset.mems", "0"),
        ("memory.low", str(32 * MiB)),
        ("cpu.weight", "39"), ("cpu.max.burst", "1000"), ("cpu.idle", "0"),
        ("pids.max", "max"),
        ("io.bfq.weight", "500"), ("io.bfq.weight", "8:16 100"),
        ("io.max", "8:0 rbps=1000"), ("io.max", "8:0 wiops=max"),
        ("hugetlb.1GB.max", "0"), ("hugetlb.1GB.rsvd.max", "0"),
        ("rdma.max", "mlx5_0 hca_handle=3 hca_object=4"),
        ("memory.high", "50000000"), ("cgroup.max.depth", "3"),
    ]
    by = [s for s in steps if isinstance(s, WriteCgroupFile)]
    assert by[7].fallback == (("io.weight", str(blkio_to_io_weight(500))),)
    assert by[8].fallback == (("io.weight", f"8:16 {blkio_to_io_weight(100)}"),)
    assert [s for s in steps if isinstance(s, SetMemoryLimits)] == \
        [SetMemoryLimits("/cg/c", True, 64 * MiB, 128 * MiB, False)]
    assert [s for s in steps if isinstance(s, SetCpuMax)] == [SetCpuMax("/cg/c", 50000, 100000)]
    assert isinstance(steps[2], LoadDeviceFilter)


@pytest.mark.parametrize("res,field", [
    ({"memory": {"swappiness": 0}}, "linux.resources.memory.swappiness"),
    ({"memory": {"kernel": 1}}, "linux.resources.memory.kernel"),
    ({"memory": {"kernelTCP": 1}}, "linux.resources.memory.kernelTCP"),
    ({"memory": {"disableOOMKiller": True}}, "linux.resources.memory.disableOOMKiller"),
    ({"memory": {"useHierarchy": False}}, "linux.resources.memory.useHierarchy"),
    ({"cpu": {"realtimeRuntime": 1}}, "linux.resources.cpu.realtimeRuntime"),
    ({"cpu": {"realtimePeriod": 1}}, "linux.resources.cpu.realtimePeriod"),
    ({"blockIO": {"leafWeight": 10}}, "linux.resources.blockIO.leafWeight"),
    ({"blockIO": {"weightDevice": [{"major": 1, "minor": 2, "leafWeight": 10}]}},
     "linux.resources.blockIO.weightDevice[0].leafWeight"),
    ({"network": {"classID": 1}}, "linux.resources.network.classID"),
    ({"network": {"priorities": [{"name": "lo", "priority": 1}]}},
     "linux.resources.network.priorities"),
    ({"memory": {"swap": 10 * MiB}}, "linux.resources.memory.swap"),
    ({"memory": {"limit": 20 * MiB, "swap": 10 * MiB}}, "linux.resources.memory.swap"),
])
def test_v2_impossible_requests_name_the_field(res, field):
    refused(res, V2, field)


def test_v2_zeros_are_unset_but_present_zero_pointers_count():
    steps = plan_resources({"memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0,
                                       "disableOOMKiller": False},
                            "cpu": {"shares": 0, "quota": 0, "period": 0},
                            "blockIO": {"weight": 0}, "pids": {"limit": 0}}, V2)
    assert [type(s).__name__ for s in steps] == ["LoadDeviceFilter"]


def test_v2_controller_missing_names_the_field():
    t = Target(dirs={"unified": "/cg/c"}, v2=True, v2_controllers=("cpu", "memory"))
    refused({"pids": {"limit": 5}}, t, "linux.resources.pids.limit")
    refused({"unified": {"io.max": "x"}}, t, 'linux.resources.unified["io.max"]')


@pytest.mark.parametrize("key", ["cgroup.procs", "../memory.max", "memory", ".max", "memory."])
def test_v2_unified_keys_checked(key):
    refused({"unified": {key: "1"}}, V2, f'linux.resources.unified["{key}"]')


# --- shared checks ------------------------------------------------------------------------

@pytest.mark.parametrize("target", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("res,field", [
    ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares"),
    ({"cpu": {"shares": 262145}}, "linux.resources.cpu.shares"),
    ({"memory": {"limit": -2}}, "linux.resources.memory.limit"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
    ({"memory": {"limit": 2 * MiB, "swap": MiB}}, "linux.resources.memory.swap"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight"),
    ({"hugepageLimits": [{"pageSize": "4MB", "limit": 1}]},
     "linux.resources.hugepageLimits[0].pageSize"),
    ({"devices": [{"allow": True, "type": "x"}]}, "linux.resources.devices[0].type"),
    ({"devices": [{"allow": True, "type": "c", "access": "rwx"}]},
     "linux.resources.devices[0].access"),
])
def test_invalid_values(target, res, field):
    refused(res, target, field)


def test_update_leaves_devices_alone_unless_given():
    up = Target(dirs=V1.dirs, v2=False, update=True)
    assert plan_resources({"pids": {"limit": 3}}, up)[0] == \
        WriteCgroupFile("/cg/pids/c", "pids.max", "3", "linux.resources.pids.limit")
    assert not [s for s in plan_resources({}, up)]
    assert [type(s).__name__ for s in plan_resources({"devices": []}, up)] == ["SetDevicesV1"]


def test_update_swap_alone_and_check_before_update():
    up = Target(dirs=V1.dirs, v2=False, update=True)
    steps = plan_resources({"memory": {"swap": 256 * MiB, "checkBeforeUpdate": True}}, up)
    assert steps == [SetMemoryLimits("/cg/memory/c", False, 0, 256 * MiB, True)]
    # at create a swap limit without a memory limit is an error
    refused({"memory": {"swap": 256 * MiB}}, V1, "linux.resources.memory.swap")
    # checkBeforeUpdate means nothing at create
    steps = plan_resources({"memory": {"limit": MiB, "checkBeforeUpdate": True}}, V1)
    assert [s.check_before_update for s in steps if isinstance(s, SetMemoryLimits)] == [False]


def test_docker_update_resources():
    up = Target(dirs=V1.dirs, v2=False, update=True)
    res = {"memory": {"limit": 128 * MiB, "reservation": 0, "swap": 256 * MiB, "kernel": 0},
           "cpu": {"shares": 0, "quota": 0, "period": 0}, "blockIO": {"weight": 0}}
    assert plan_resources(res, up) == [SetMemoryLimits("/cg/memory/c", False, 128 * MiB,
                                                       256 * MiB, False)]


# --- conversions ----------------------------------------------------------------------------

@pytest.mark.parametrize("shares,weight", [(0, 0), (2, 1), (1024, 39), (262144, 10000),
                                           (512, 20), (100, 4)])
def test_shares_to_weight(shares, weight):
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize("blkio,io", [(0, 0), (10, 1), (1000, 10000), (500, 4950), (100, 910)])
def test_blkio_to_io_weight(blkio, io):
    assert blkio_to_io_weight(blkio) == io


@pytest.mark.parametrize("swap,limit,want", [
    (0, 0, None), (0, 64, None), (0, -1, "max"), (-1, 64, "max"), (-1, -1, "max"),
    (128, 64, "64"), (64, 64, "0"),
])
def test_swap_v2(swap, limit, want):
    assert swap_v2(swap, limit) == want


@pytest.mark.parametrize("swap,limit", [(128, 0), (128, -1), (32, 64)])
def test_swap_v2_impossible(swap, limit):
    with pytest.raises(ValueError):
        swap_v2(swap, limit)
