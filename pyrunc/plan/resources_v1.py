"""linux.resources on cgroup v1: one file per setting, in the controller's hierarchy.

Order follows runc's: cpuset, devices, memory, cpu, pids, blkio, hugetlb,
net_cls, net_prio, rdma.
"""
from pyrunc.errors import ConfigError
from pyrunc.plan import devices as dev
from pyrunc.plan.resources import (R, check_cpu, check_memory, check_weight, hugepage_limits,
                                   nonzero, pids_limit, rdma_line, throttles)
from pyrunc.plan.steps import SetDevicesV1, SetMemoryLimits, WriteCgroupFile

_THROTTLE_FILES = {"throttleReadBpsDevice": "blkio.throttle.read_bps_device",
                   "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
                   "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
                   "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device"}


def _dir(target, controller, field):
    d = target.dirs.get(controller)
    if d is None:
        raise ConfigError(field, f"the {controller} cgroup controller is not mounted on this host")
    return d


def plan_v1(res, target):
    if res.get("unified"):
        raise ConfigError(f"{R}.unified", "unified (cgroup v2) resources need a cgroup v2 "
                          "host; this one uses cgroup v1")
    steps = []
    w = steps.append

    def write(controller, field, file, value, **kw):
        w(WriteCgroupFile(_dir(target, controller, field), file, str(value), field, **kw))

    cpu = res.get("cpu") or {}
    for key in ("cpus", "mems"):
        if cpu.get(key):
            write("cpuset", f"{R}.cpu.{key}", f"cpuset.{key}", cpu[key])

    if not target.update or "devices" in res:
        allow, rules = dev.device_state(res.get("devices"))
        w(SetDevicesV1(_dir(target, "devices", f"{R}.devices"), allow, rules))

    _memory(res.get("memory") or {}, target, write, w)
    _cpu(cpu, write)

    pids_limit(res, write)
    _blkio(res.get("blockIO") or {}, write)
    hugepage_limits(res, target, write, "hugetlb.{}.limit_in_bytes",
                    "hugetlb.{}.rsvd.limit_in_bytes")

    net = res.get("network") or {}
    if nonzero(net, "classID") is not None:
        write("net_cls", f"{R}.network.classID", "net_cls.classid", net["classID"])
    for i, p in enumerate(net.get("priorities") or ()):
        write("net_prio", f"{R}.network.priorities[{i}]", "net_prio.ifpriomap",
              f"{p['name']} {p['priority']}")

    for name, limits in (res.get("rdma") or {}).items():
        write("rdma", f"{R}.rdma.{name}", "rdma.max", rdma_line(name, limits))
    return steps


def _memory(mem, target, write, w):
    check_memory(mem, target)
    f = f"{R}.memory"
    limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
    check = bool(mem.get("checkBeforeUpdate")) and target.update
    if limit or swap:
        w(SetMemoryLimits(_dir(target, "memory", f), False, limit, swap, check))
    if nonzero(mem, "reservation") is not None:
        write("memory", f"{f}.reservation", "memory.soft_limit_in_bytes", mem["reservation"])
    if mem.get("swappiness") is not None:
        write("memory", f"{f}.swappiness", "memory.swappiness", mem["swappiness"])
    # deprecated in the kernel and the spec, but v1 still has the files
    if nonzero(mem, "kernel") is not None:
        write("memory", f"{f}.kernel", "memory.kmem.limit_in_bytes", mem["kernel"])
    if nonzero(mem, "kernelTCP") is not None:
        write("memory", f"{f}.kernelTCP", "memory.kmem.tcp.limit_in_bytes", mem["kernelTCP"])
    if mem.get("disableOOMKiller"):
        write("memory", f"{f}.disableOOMKiller", "memory.oom_control", 1)
    if mem.get("useHierarchy") is not None:
        write("memory", f"{f}.useHierarchy", "memory.use_hierarchy",
              int(bool(mem["useHierarchy"])))


def _cpu(cpu, write):
    check_cpu(cpu)
    f = f"{R}.cpu"
    if nonzero(cpu, "shares") is not None:
        write("cpu", f"{f}.shares", "cpu.shares", cpu["shares"])
    if nonzero(cpu, "period") is not None:
        write("cpu", f"{f}.period", "cpu.cfs_period_us", cpu["period"])
    if nonzero(cpu, "quota") is not None:
        write("cpu", f"{f}.quota", "cpu.cfs_quota_us", cpu["quota"])
    if cpu.get("burst") is not None:
        write("cpu", f"{f}.burst", "cpu.cfs_burst_us", cpu["burst"])
    if nonzero(cpu, "realtimePeriod") is not None:
        write("cpu", f"{f}.realtimePeriod", "cpu.rt_period_us", cpu["realtimePeriod"])
    if nonzero(cpu, "realtimeRuntime") is not None:
        write("cpu", f"{f}.realtimeRuntime", "cpu.rt_runtime_us", cpu["realtimeRuntime"])
    if cpu.get("idle") is not None:
        write("cpu", f"{f}.idle", "cpu.idle", cpu["idle"])


def _blkio(bio, write):
    f = f"{R}.blockIO"
    check_weight(bio.get("weight"), f"{f}.weight")
    check_weight(bio.get("leafWeight"), f"{f}.leafWeight")
    # kernels without CFQ have only BFQ's files
    if nonzero(bio, "weight") is not None:
        write("blkio", f"{f}.weight", "blkio.weight", bio["weight"],
              fallback=(("blkio.bfq.weight", str(bio["weight"])),))
    if nonzero(bio, "leafWeight") is not None:
        write("blkio", f"{f}.leafWeight", "blkio.leaf_weight", bio["leafWeight"])
    for i, d in enumerate(bio.get("weightDevice") or ()):
        field = f"{f}.weightDevice[{i}]"
        dev_ = f"{d['major']}:{d['minor']}"
        check_weight(d.get("weight"), field + ".weight")
        check_weight(d.get("leafWeight"), field + ".leafWeight")
        if nonzero(d, "weight") is not None:
            v = f"{dev_} {d['weight']}"
            write("blkio", field + ".weight", "blkio.weight_device", v,
                  fallback=(("blkio.bfq.weight_device", v),))
        if nonzero(d, "leafWeight") is not None:
            write("blkio", field + ".leafWeight", "blkio.leaf_weight_device",
                  f"{dev_} {d['leafWeight']}")
    for key, i, e in throttles(bio):
        write("blkio", f"{f}.{key}[{i}]", _THROTTLE_FILES[key],
              f"{e['major']}:{e['minor']} {e['rate']}")
