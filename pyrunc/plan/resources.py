"""linux.resources -> cgroup file writes, for create and for `update`.

Zero or absent means "leave as is" wherever runc treats it so (docker sends
cpu.shares 0 and blockIO.weight 0 meaning nothing); a request this host or
cgroup version cannot carry out is a ConfigError naming the field, never a
silent skip.  The per-version details are in resources_v1 / resources_v2.
"""
from pyrunc.errors import ConfigError
from pyrunc.record import Record

R = "linux.resources"


class Target(Record):
    """Where the writes go and what the host offers."""
    dirs: dict                      # state key -> dir ("memory", ..., "unified")
    v2: bool                        # cgroup v2 only: everything is in dirs["unified"]
    v2_controllers: tuple = ()      # v2: controllers the tree offers; () = not known
    hugepage_sizes: tuple = ()      # "2MB", "1GB"; () = not known, take any
    update: bool = False            # `pyrunc update` on a running container


def plan_resources(res, target):
    """The write steps for a LinuxResources dict (already schema-checked)."""
    if target.v2:
        from pyrunc.plan.resources_v2 import plan_v2
        return plan_v2(res or {}, target)
    from pyrunc.plan.resources_v1 import plan_v1
    return plan_v1(res or {}, target)


# --- shared checks ---------------------------------------------------------------

def nonzero(d, key):
    """d[key] when it is set to something other than 0/None."""
    v = d.get(key)
    return v if v not in (None, 0) else None


def check_memory(mem, target):
    f = f"{R}.memory"
    for key in ("limit", "reservation", "swap", "kernel", "kernelTCP"):
        v = mem.get(key)
        if v is not None and v < -1:
            raise ConfigError(f"{f}.{key}", f"invalid value {v}: must be -1 (unlimited), "
                              "0 (unset) or a number of bytes")
    limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
    if limit > 0 and swap > 0 and swap < limit:
        raise ConfigError(f"{f}.swap", f"memory+swap limit {swap} must not be below the "
                          f"memory limit {limit}")
    if swap > 0 and limit in (0, -1) and not target.update:
        raise ConfigError(f"{f}.swap", "a swap limit needs a memory limit "
                          f"({f}.limit)")
    sw = mem.get("swappiness")
    if sw is not None and not 0 <= sw <= 100:
        raise ConfigError(f"{f}.swappiness", f"invalid value {sw}: valid memory swappiness "
                          "range is 0-100")


def check_cpu(cpu):
    shares = nonzero(cpu, "shares")
    if shares is not None and not 2 <= shares <= 262144:
        raise ConfigError(f"{R}.cpu.shares", f"invalid value {shares}: cpu shares range "
                          "is 2-262144")
    quota = cpu.get("quota")
    if quota is not None and quota < -1:
        raise ConfigError(f"{R}.cpu.quota", f"invalid value {quota}: must be -1 (unlimited), "
                          "0 (unset) or microseconds")


def check_weight(v, field, lo=10, hi=1000):
    if v is not None and v != 0 and not lo <= v <= hi:
        raise ConfigError(field, f"invalid value {v}: weight range is {lo}-{hi}")


def pids_limit(res, write):
    """linux.resources.pids.limit: pids.max in both versions (-1: "max")."""
    limit = nonzero(res.get("pids") or {}, "limit")
    if limit is not None:
        write("pids", f"{R}.pids.limit", "pids.max", "max" if limit < 0 else limit)


def hugepage_limits(res, target, write, limit_file, rsvd_file):
    """linux.resources.hugepageLimits; the files' names have the page size
    in place of "{}" (v1 hugetlb.{}.limit_in_bytes, v2 hugetlb.{}.max)."""
    for i, e in enumerate(res.get("hugepageLimits") or ()):
        field = f"{R}.hugepageLimits[{i}]"
        size = e["pageSize"]
        if target.hugepage_sizes and size not in target.hugepage_sizes:
            raise ConfigError(f"{field}.pageSize",
                              f"huge page size {size} is not supported by this host (it has "
                              f"{', '.join(target.hugepage_sizes) or 'none'})")
        write("hugetlb", field, limit_file.format(size), e["limit"])
        # the reservation limit is newer: a kernel without it is not an error
        write("hugetlb", field, rsvd_file.format(size), e["limit"], optional=True)


def rdma_line(name, limits):
    def v(key):
        n = limits.get(key)
        return "max" if n is None else str(n)
    return f"{name} hca_handle={v('hcaHandles')} hca_object={v('hcaObjects')}"


def throttles(bio):
    """(spec key, entry index, entry) for every throttle entry in blockIO."""
    for key in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                "throttleWriteIOPSDevice"):
        for i, e in enumerate(bio.get(key) or ()):
            yield key, i, e
