"""linux.resources on cgroup v2, everything in one directory.

The spec's numbers are v1's; they are converted the way runc and crun do:
cpu.shares -> cpu.weight, blkio weight -> io.bfq.weight or io.weight,
memory swap (memory+swap) -> memory.swap.max (swap alone).  What v2 has no
file for (realtime cpu, kernel memory, swappiness, net_cls/net_prio, leaf
weights) is refused.  `unified` entries are written last, verbatim.
"""
from pyrunc.errors import ConfigError
from pyrunc.plan import devices as dev
from pyrunc.plan.resources import (R, check_cpu, check_memory, check_weight, hugepage_limits,
                                   nonzero, pids_limit, rdma_line, throttles)
from pyrunc.plan.steps import LoadDeviceFilter, SetCpuMax, SetMemoryLimits, WriteCgroupFile

_IO_MAX_KEYS = {"throttleReadBpsDevice": "rbps", "throttleWriteBpsDevice": "wbps",
                "throttleReadIOPSDevice": "riops", "throttleWriteIOPSDevice": "wiops"}
# files a `unified` entry may not write: they move processes or reshape the tree
_FORBIDDEN = {"cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.type",
              "cgroup.kill"}


def shares_to_weight(shares):
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000]; 0 stays 0 (unset)."""
    if not shares:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight):
    """blkio weight [10, 1000] -> io.weight [1, 10000]; 0 stays 0 (unset)."""
    if not weight:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_v2(swap, limit):
    """memory+swap (v1 semantics) -> memory.swap.max; None = leave as is.

    limit is the memory limit in effect (-1 = unlimited).
    """
    if limit == -1 and swap == 0:
        return "max"            # "unlimited memory" means unlimited swap as well
    if swap == 0:
        return None
    if swap == -1:
        return "max"
    if limit in (0, -1):
        raise ValueError("a swap limit needs a memory limit")
    if swap < limit:
        raise ValueError(f"memory+swap limit {swap} must not be below the memory limit {limit}")
    return str(swap - limit)


def _max(v):
    return "max" if v == -1 else str(v)


def plan_v2(res, target):
    d = target.dirs["unified"]
    steps = []
    w = steps.append

    def need(controller, field):
        if target.v2_controllers and controller not in target.v2_controllers:
            raise ConfigError(field, f"the {controller} cgroup controller is not available "
                              f"on this host")

    def write(controller, field, file, value, **kw):
        need(controller, field)
        w(WriteCgroupFile(d, file, str(value), field, **kw))

    def refuse(field, what):
        raise ConfigError(field, f"{what} is not supported on cgroup v2")

    cpu = res.get("cpu") or {}
    for key in ("cpus", "mems"):
        if cpu.get(key):
            write("cpuset", f"{R}.cpu.{key}", f"cpuset.{key}", cpu[key])

    if not target.update or "devices" in res:
        allow, rules = dev.device_state(res.get("devices"))
        w(LoadDeviceFilter(d, allow, rules))

    mem = res.get("memory") or {}
    check_memory(mem, target)
    f = f"{R}.memory"
    limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
    if limit or swap:
        need("memory", f)
        if not target.update:
            try:
                swap_v2(swap, limit)
            except ValueError as e:
                raise ConfigError(f"{f}.swap", str(e)) from None
        w(SetMemoryLimits(d, True, limit, swap, bool(mem.get("checkBeforeUpdate"))
                          and target.update))
    if nonzero(mem, "reservation") is not None:
        write("memory", f"{f}.reservation", "memory.low", _max(mem["reservation"]))
    if mem.get("swappiness") is not None:
        refuse(f"{f}.swappiness", "memory swappiness")
    for key in ("kernel", "kernelTCP"):
        if nonzero(mem, key) is not None:
            refuse(f"{f}.{key}", "a kernel memory limit")
    if mem.get("disableOOMKiller"):
        refuse(f"{f}.disableOOMKiller", "disabling the OOM killer")
    if mem.get("useHierarchy") is False:
        refuse(f"{f}.useHierarchy", "non-hierarchical memory accounting")

    check_cpu(cpu)
    f = f"{R}.cpu"
    if nonzero(cpu, "shares") is not None:
        write("cpu", f"{f}.shares", "cpu.weight", shares_to_weight(cpu["shares"]))
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    if quota or period:
        need("cpu", f"{f}.quota" if quota else f"{f}.period")
        w(SetCpuMax(d, quota, period))
    if cpu.get("burst") is not None:
        write("cpu", f"{f}.burst", "cpu.max.burst", cpu["burst"])
    if cpu.get("idle") is not None:
        write("cpu", f"{f}.idle", "cpu.idle", cpu["idle"])
    for key in ("realtimePeriod", "realtimeRuntime"):
        if nonzero(cpu, key) is not None:
            refuse(f"{f}.{key}", "realtime cpu scheduling limits")

    pids_limit(res, write)
    _io(res.get("blockIO") or {}, write, refuse)
    hugepage_limits(res, target, write, "hugetlb.{}.max", "hugetlb.{}.rsvd.max")

    net = res.get("network") or {}
    if nonzero(net, "classID") is not None:
        refuse(f"{R}.network.classID", "net_cls (network.classID)")
    if net.get("priorities"):
        refuse(f"{R}.network.priorities", "net_prio (network.priorities)")

    for name, limits in (res.get("rdma") or {}).items():
        write("rdma", f"{R}.rdma.{name}", "rdma.max", rdma_line(name, limits))

    for key, value in (res.get("unified") or {}).items():
        field = f'{R}.unified["{key}"]'
        controller, dot, rest = key.partition(".")
        if "/" in key or not dot or not controller or not rest or key in _FORBIDDEN:
            raise ConfigError(field, f"{key!r} is not a cgroup v2 interface file pyrunc may set")
        if controller != "cgroup":
            need(controller, field)
        w(WriteCgroupFile(d, key, value, field))
    return steps


def _io(bio, write, refuse):
    f = f"{R}.blockIO"
    check_weight(bio.get("weight"), f"{f}.weight")
    if nonzero(bio, "weight") is not None:
        # BFQ takes the v1 range as is; io.weight needs the conversion
        write("io", f"{f}.weight", "io.bfq.weight", bio["weight"],
              fallback=(("io.weight", str(blkio_to_io_weight(bio["weight"]))),))
    if nonzero(bio, "leafWeight") is not None:
        refuse(f"{f}.leafWeight", "a blkio leaf weight")
    for i, d in enumerate(bio.get("weightDevice") or ()):
        field = f"{f}.weightDevice[{i}]"
        dev_ = f"{d['major']}:{d['minor']}"
        check_weight(d.get("weight"), field + ".weight")
        if nonzero(d, "weight") is not None:
            write("io", field + ".weight", "io.bfq.weight", f"{dev_} {d['weight']}",
                  fallback=(("io.weight", f"{dev_} {blkio_to_io_weight(d['weight'])}"),))
        if nonzero(d, "leafWeight") is not None:
            refuse(field + ".leafWeight", "a blkio leaf weight")
    for key, i, e in throttles(bio):
        # v1 takes rate 0 as "no limit"; io.max spells that "max"
        rate = e["rate"] or "max"
        write("io", f"{f}.{key}[{i}]", "io.max", f"{e['major']}:{e['minor']} "
              f"{_IO_MAX_KEYS[key]}={rate}")
