"""What the host's cgroup layout is: which v1 hierarchies are mounted where,
whether a cgroup2 tree is there (v2-only, or "unified" beside v1 on a hybrid
host), and which cgroup this process is in on each.

probe() reads /proc/self/mountinfo and /proc/self/cgroup once; the parsing is
pure so that tests describe any host as text.  The planner takes the result
as an argument, which is how it stays pure.
"""
import posix

from pyrunc import pathstr
from pyrunc.record import Record

# v1 controllers runc places a container in, plus the named systemd hierarchy
KNOWN_V1 = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
            "net_cls", "net_prio", "perf_event", "freezer", "rdma", "misc", "name=systemd")
SYSTEMD_SOCKET = "/run/systemd/private"


class Hierarchy(Record):
    """One mounted v1 hierarchy (co-mounted controllers share one)."""
    controllers: tuple   # ("cpu", "cpuacct") or ("name=systemd",)
    mountpoint: str      # /sys/fs/cgroup/cpu,cpuacct
    root: str            # the mount's root inside the hierarchy (not "/" in a cgroupns)
    own: str             # this process's cgroup in the hierarchy (/proc/self/cgroup)

    def own_dir(self):
        """Host directory of this process's own cgroup."""
        return join_under(self.mountpoint, _rel(self.own, self.root))


class HostCgroups(Record):
    v1: tuple = ()                 # Hierarchy per mounted v1 hierarchy we know
    v2_mount: str | None = None    # /sys/fs/cgroup (v2 only) or /sys/fs/cgroup/unified (hybrid)
    v2_root: str = "/"
    v2_own: str = "/"
    v2_controllers: tuple = ()     # cgroup.controllers of the v2 mount's root
    systemd: bool = False          # systemd's private socket is there
    hugepage_sizes: tuple = ()     # "2MB", "1GB": what hugetlb files are named after

    @property
    def unified(self):
        """cgroup v2 only: no v1 hierarchy is mounted."""
        return not self.v1 and self.v2_mount is not None

    def v2_own_dir(self):
        return join_under(self.v2_mount, _rel(self.v2_own, self.v2_root))

    def hierarchy(self, controller):
        for h in self.v1:
            if controller in h.controllers:
                return h
        return None


def join_under(base, path):
    """base + path, path treated as relative even when it starts with "/"."""
    path = pathstr.normpath("/" + path).lstrip("/")
    return pathstr.join(base, path) if path else base


def _rel(path, root):
    if root in ("", "/"):
        return path
    if path == root or path.startswith(root.rstrip("/") + "/"):
        return path[len(root):] or "/"
    return "/"   # our cgroup is outside the mount's root (a cgroupns): use the root


def unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mountinfo_entries(text):
    """mountinfo text -> (root, mountpoint, optional fields, fstype, source, super options)
    per line, paths unescaped.  The one mountinfo parser (executor/cgroupfs uses it too)."""
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        opts = tuple(fields[sep + 3].split(",")) if len(fields) > sep + 3 else ()
        yield (unescape(fields[3]), unescape(fields[4]), tuple(fields[6:sep]),
               fields[sep + 1], unescape(fields[sep + 2]) if len(fields) > sep + 2 else "", opts)


def parse_cgroup_mounts(text):
    """mountinfo text -> [(fstype, root, mountpoint, super options)] for cgroup/cgroup2 mounts."""
    return [(fstype, root, mountpoint, opts)
            for root, mountpoint, _opt, fstype, _src, opts in mountinfo_entries(text)
            if fstype in ("cgroup", "cgroup2")]


def parse_proc_cgroup(text):
    """/proc/self/cgroup text -> {controller or "" (v2): path}."""
    out = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if not parts[1]:
            out[""] = parts[2]
        for c in parts[1].split(","):
            if c:
                out[c] = parts[2]
    return out


def build(mountinfo, proc_cgroup, *, v2_controllers=(), systemd=False, hugepage_sizes=()):
    """HostCgroups from mountinfo and /proc/self/cgroup texts (pure)."""
    own = parse_proc_cgroup(proc_cgroup)
    v1, seen = [], set()
    v2 = None
    for fstype, root, mountpoint, opts in parse_cgroup_mounts(mountinfo):
        if fstype == "cgroup2":
            # the last cgroup2 mount under /sys/fs/cgroup wins (v2 host or hybrid "unified")
            if mountpoint.startswith("/sys/fs/cgroup") or v2 is None:
                v2 = (root, mountpoint)
            continue
        ctrls = tuple(o for o in opts if o in KNOWN_V1)
        if not ctrls or ctrls in seen:
            continue   # an unknown named hierarchy, or a second mount of the same one
        seen.add(ctrls)
        path = next((own[c] for c in ctrls if c in own), "/")
        v1.append(Hierarchy(ctrls, mountpoint, root, path))
    kw = {}
    if v2 is not None:
        kw = dict(v2_mount=v2[1], v2_root=v2[0], v2_own=own.get("", "/"),
                  v2_controllers=tuple(v2_controllers))
    return HostCgroups(v1=tuple(v1), systemd=systemd, hugepage_sizes=tuple(hugepage_sizes), **kw)


def hugepage_size_name(dirname):
    """"hugepages-2048kB" -> "2MB", the name hugetlb cgroup files use."""
    kb = int(dirname.split("-", 1)[1].rstrip("kB"))
    for unit, size in (("GB", 1 << 20), ("MB", 1 << 10)):
        if kb >= size and kb % size == 0:
            return f"{kb // size}{unit}"
    return f"{kb}KB"


def _read(path):
    from pyrunc.state import read_text   # loaded by every command: no builtin open()
    return read_text(path)


_probed = []   # probe()'s answer: the layout does not change under one command


def probe():
    """The layout of the host this process runs on (read once per process:
    create asks to plan its cgroups and again to shape the joins)."""
    if not _probed:
        _probed.append(_probe_now())
    return _probed[0]


def _probe_now():
    mountinfo = _read("/proc/self/mountinfo")
    proc_cgroup = _read("/proc/self/cgroup")
    try:
        sizes = sorted((hugepage_size_name(n) for n in posix.listdir("/sys/kernel/mm/hugepages")
                        if n.startswith("hugepages-")), key=_size_key)
    except OSError:
        sizes = []
    host = build(mountinfo, proc_cgroup, systemd=pathstr.exists(SYSTEMD_SOCKET),
                 hugepage_sizes=sizes)
    if host.v2_mount:
        ctrls = _read(pathstr.join(host.v2_mount, "cgroup.controllers")).split()
        host = HostCgroups(host.v1, host.v2_mount, host.v2_root, host.v2_own, tuple(ctrls),
                           host.systemd, host.hugepage_sizes)
    return host


def _size_key(name):
    mult = {"KB": 1, "MB": 1 << 10, "GB": 1 << 20}
    return int(name[:-2]) * mult[name[-2:]]
