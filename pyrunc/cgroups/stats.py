"""A container's resource usage in the shape runc's `events --stats` prints.

Field names, order and which zero values are left out follow runc's
types/events.go (Go's omitempty drops zero numbers and empty lists, never a
nested struct), so clients that parse runc's output parse ours.
"""
import os

MAX_U64 = (1 << 64) - 1
_CPUSET_FLAGS = ("cpu_exclusive", "mems", "mem_hardwall", "mem_exclusive", "memory_migrate",
                 "memory_spread_page", "memory_spread_slab", "memory_pressure",
                 "sched_load_balance", "sched_relax_domain_level")


def _read(d, name):
    if not d:
        return ""
    try:
        with open(os.path.join(d, name)) as f:
            return f.read()
    except OSError:
        return ""


def _num(text, default=0):
    text = text.strip()
    if text == "max":
        return MAX_U64
    try:
        return int(text)
    except ValueError:
        return default


def _kv(text):
    """"key value" lines (memory.stat, cpu.stat) -> {key: int}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = _num(parts[1])
    return out


def _omit(d, *keys):
    """Drop keys whose value is 0 or empty (Go's omitempty)."""
    for k in keys:
        if not d.get(k):
            d.pop(k, None)
    return d


def cpu_list(text):
    """"0-2,5" -> [0, 1, 2, 5]."""
    out = []
    for part in text.strip().split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out += range(int(lo), int(hi) + 1)
        elif part:
            out.append(int(part))
    return out


def _mem_entry(limit, usage, max_, failcnt):
    return _omit({"limit": limit, "usage": usage, "max": max_, "failcnt": failcnt}, "usage", "max")


def collect(m):
    """The stats data object for Manager m."""
    hugetlb = _hugetlb_v2(m) if m.v2 else _hugetlb_v1(m)
    return {
        "cpu": _cpu_v2(m) if m.v2 else _cpu_v1(m),
        "cpuset": _cpuset(m),
        "memory": _memory_v2(m) if m.v2 else _memory_v1(m),
        "pids": _pids(m),
        "blkio": _io_v2(m) if m.v2 else _blkio_v1(m),
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }


# --- cgroup v1 -----------------------------------------------------------------------

def _cpu_v1(m):
    acct = m.path("cpuacct")
    usage = {"total": _num(_read(acct, "cpuacct.usage")),
             "percpu": [int(x) for x in _read(acct, "cpuacct.usage_percpu").split()]}
    kernel, user = [], []
    for line in _read(acct, "cpuacct.usage_all").splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3:
            user.append(int(parts[1]))
            kernel.append(int(parts[2]))
    usage["percpu_kernel"], usage["percpu_user"] = kernel, user
    # cpuacct.stat counts USER_HZ ticks
    hz = os.sysconf("SC_CLK_TCK") or 100
    st = _kv(_read(acct, "cpuacct.stat"))
    usage["kernel"] = st.get("system", 0) * 1_000_000_000 // hz
    usage["user"] = st.get("user", 0) * 1_000_000_000 // hz
    _omit(usage, "total", "percpu", "percpu_kernel", "percpu_user")
    t = _kv(_read(m.path("cpu"), "cpu.stat"))
    throttling = _omit({"periods": t.get("nr_periods", 0),
                        "throttledPeriods": t.get("nr_throttled", 0),
                        "throttledTime": t.get("throttled_time", 0)},
                       "periods", "throttledPeriods", "throttledTime")
    return {"usage": usage, "throttling": throttling}


def _memory_v1(m):
    d = m.path("memory")
    raw = _kv(_read(d, "memory.stat"))

    def entry(prefix):
        return _mem_entry(_num(_read(d, prefix + "limit_in_bytes")),
                          _num(_read(d, prefix + "usage_in_bytes")),
                          _num(_read(d, prefix + "max_usage_in_bytes")),
                          _num(_read(d, prefix + "failcnt")))
    out = {"cache": raw.get("cache", 0), "usage": entry("memory."),
           "swap": entry("memory.memsw."), "kernel": entry("memory.kmem."),
           "kernelTCP": entry("memory.kmem.tcp."), "raw": raw}
    return _omit(out, "cache", "raw")


def _blkio_v1(m):
    d = m.path("blkio")
    names = (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
             ("ioServicedRecursive", "io_serviced_recursive"))
    # CFQ's files, else BFQ's, else the throttling layer's (which every kernel has)
    for prefix in ("blkio.", "blkio.bfq.", "blkio.throttle."):
        out = {}
        for key, name in names:
            entries = _blkio_entries(_read(d, prefix + name))
            if entries:
                out[key] = entries
        if out:
            return out
    return {}


def _blkio_entries(text):
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue   # the "Total N" line
        major, minor = parts[0].split(":")
        out.append(_omit({"major": int(major), "minor": int(minor), "op": parts[1],
                          "value": int(parts[2])}, "major", "minor", "op", "value"))
    return out


def _hugetlb_v1(m):
    d = m.path("hugetlb")
    out = {}
    if not d:
        return out
    for size in _page_sizes():
        p = f"hugetlb.{size}."
        out[size] = _omit({"usage": _num(_read(d, p + "usage_in_bytes")),
                           "max": _num(_read(d, p + "max_usage_in_bytes")),
                           "failcnt": _num(_read(d, p + "failcnt"))}, "usage", "max")
    return out


# --- cgroup v2 -----------------------------------------------------------------------

def _cpu_v2(m):
    st = _kv(_read(m.path("cpu"), "cpu.stat"))
    usage = _omit({"total": st.get("usage_usec", 0) * 1000,
                   "kernel": st.get("system_usec", 0) * 1000,
                   "user": st.get("user_usec", 0) * 1000}, "total")
    throttling = _omit({"periods": st.get("nr_periods", 0),
                        "throttledPeriods": st.get("nr_throttled", 0),
                        "throttledTime": st.get("throttled_usec", 0) * 1000},
                       "periods", "throttledPeriods", "throttledTime")
    return {"usage": usage, "throttling": throttling}


def _memory_v2(m):
    d = m.path("memory")
    raw = _kv(_read(d, "memory.stat"))
    events = _kv(_read(d, "memory.events"))
    usage = _mem_entry(_num(_read(d, "memory.max")), _num(_read(d, "memory.current")),
                       _num(_read(d, "memory.peak")), events.get("max", 0))
    # v1 reports memory+swap as "swap": do the same
    sw_limit = _num(_read(d, "memory.swap.max"))
    if sw_limit != MAX_U64 and usage["limit"] != MAX_U64:
        sw_limit += usage["limit"]
    swap = _mem_entry(sw_limit, _num(_read(d, "memory.swap.current")) + usage.get("usage", 0),
                      _num(_read(d, "memory.swap.peak")), 0)
    out = {"cache": raw.get("file", 0), "usage": usage, "swap": swap,
           "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0},
           "raw": raw}
    return _omit(out, "cache", "raw")


def _io_v2(m):
    out = {"ioServiceBytesRecursive": [], "ioServicedRecursive": []}
    for line in _read(m.path("io"), "io.stat").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for key, field, op in (("ioServiceBytesRecursive", "rbytes", "Read"),
                               ("ioServiceBytesRecursive", "wbytes", "Write"),
                               ("ioServicedRecursive", "rios", "Read"),
                               ("ioServicedRecursive", "wios", "Write")):
            out[key].append(_omit({"major": major, "minor": minor, "op": op,
                                   "value": _num(kv.get(field, "0"))},
                                  "major", "minor", "op", "value"))
    return _omit(out, "ioServiceBytesRecursive", "ioServicedRecursive")


def _hugetlb_v2(m):
    d = m.path("hugetlb")
    out = {}
    if not _read(d, "cgroup.controllers").split().count("hugetlb"):
        return out
    for size in _page_sizes():
        p = f"hugetlb.{size}."
        if not os.path.exists(os.path.join(d, p + "current")):
            continue
        out[size] = _omit({"usage": _num(_read(d, p + "current")),
                           "max": _num(_read(d, p + "max")),
                           "failcnt": _kv(_read(d, p + "events")).get("max", 0)},
                          "usage", "max")
    return out


# --- both ------------------------------------------------------------------------------

def _cpuset(m):
    d = m.path("cpuset")
    prefix = "cpuset."
    out = {"cpus": cpu_list(_read(d, prefix + "cpus") or _read(d, prefix + "cpus.effective"))}
    if m.v2:
        out["mems"] = cpu_list(_read(d, prefix + "mems") or _read(d, prefix + "mems.effective"))
        return _omit(out, "cpus", "mems")
    for name in _CPUSET_FLAGS:
        out[name] = cpu_list(_read(d, prefix + name)) if name == "mems" else \
            _num(_read(d, prefix + name))
    return _omit(out, "cpus", "mems")


def _pids(m):
    d = m.path("pids")
    limit = _read(d, "pids.max").strip()
    return _omit({"current": _num(_read(d, "pids.current")),
                  "limit": 0 if limit in ("max", "") else int(limit)}, "current", "limit")


def _page_sizes():
    from pyrunc.cgroups.host import hugepage_size_name
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return []
    return sorted(hugepage_size_name(n) for n in names if n.startswith("hugepages-"))
