"""config -> the steps that build the container's root filesystem.

Two lists come back, in the order runc 1.1 does the same work:

rootfs_steps (ROOTFS phase, init, before the jail):
    SetRootPropagation, BindRootfs, one MountFs/MountCgroup per config mount,
    then -- unless /dev is a bind mount from the host -- the default devices,
    linux.devices, the /dev symlinks, and SetupConsole when asked for a tty.
post_pivot_steps (CONTAINER phase, after the createContainer hooks):
    PivotRoot or MoveRoot (which also re-applies a shared/unbindable root
    propagation and remounts ro tmpfs mounts), RemountRootReadonly,
    ReadonlyPath..., MaskPath...
    Sysctls must be written before the first ReadonlyPath (it makes
    /proc/sys read-only); hostname anywhere after the jail.

Decisions worth knowing:
- rootfsPropagation shared/rshared/unbindable cannot be set before pivot_root
  (the kernel refuses to pivot a shared root), so / is made rslave first and
  the asked propagation is applied to the new / after the jail.
- tmpfs and /dev mounts asked `ro` are mounted rw, filled (devices, nested
  mount points) and remounted ro after the jail, as runc does.
- `type: cgroup` mounts become MountCgroup; what is mounted depends on the
  host's cgroup layout, probed at execution time (executor/cgroupfs.py).
  They are read-only unless the options say rw (CVE-2023-25809).
"""


from pyrunc import pathstr
from pyrunc.errors import ConfigError
from pyrunc.plan import mountopts as mo
from pyrunc.plan.steps import (BindRootfs, MakeDevice, MakeSymlink, MaskPath, MountCgroup,
                               MountFs, MoveRoot, PivotRoot, ReadonlyPath, RemountRootReadonly,
                               SetRootPropagation, SetupConsole)

# Devices every container gets (runc's list, in runc's order): path, major, minor.
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/random", 1, 8), ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0), ("/dev/zero", 1, 5), ("/dev/urandom", 1, 9),
)

DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
)

# Files under /proc that may be bind-mounted over (lxcfs and friends).
PROC_MOUNT_ALLOWED = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
))

_S_IFMT = 0o170000


def clean(path):
    """Lexical cleanup of a container path, for comparisons only."""
    return pathstr.normpath("/" + path.lstrip("/"))


def plan_rootfs(config, *, no_pivot=False, userns=False, terminal=False, host_kcore=None):
    """Return (rootfs_steps, post_pivot_steps).  See the module docstring.

    host_kcore: whether /proc/kcore exists on the host (runc links /dev/core to
    it only then); None = look.
    """
    linux = config.linux
    if linux.namespace("mount") is None:
        raise ConfigError("linux.namespaces", "a mount namespace is required to set up the rootfs")
    asked = mo.propagation_flag(linux.rootfs_propagation) if linux.rootfs_propagation else 0
    # shared/unbindable: only after pivot_root; before it, rslave like the default
    late = asked if asked & (mo.MS_SHARED | mo.MS_UNBINDABLE) else 0
    early = asked if asked and not late else mo.MS_SLAVE | mo.MS_REC

    steps = [SetRootPropagation(early), BindRootfs(config.root.path)]
    readonly_mounts = []
    cgroupns = linux.namespace("cgroup") is not None
    for i, m in enumerate(config.mounts):
        step, ro_later = plan_mount(config, i, m, cgroupns)
        steps.append(step)
        if ro_later:
            readonly_mounts.append(ro_later)

    if needs_dev_setup(config):
        steps += plan_devices(config, userns)
        steps.append(MakeSymlink("pts/ptmx", "/dev/ptmx", replace=True))
        links = DEV_SYMLINKS
        if pathstr.exists("/proc/kcore") if host_kcore is None else host_kcore:
            links += (("/proc/kcore", "/dev/core"),)
        steps += [MakeSymlink(target, link) for target, link in links]
    if terminal:
        steps.append(SetupConsole(config.process.console_size if config.process else None))

    jail = MoveRoot if no_pivot else PivotRoot
    post = [jail(config.root.path, late, tuple(readonly_mounts))]
    if config.root.readonly:
        post.append(RemountRootReadonly())
    post += [ReadonlyPath(p) for p in linux.readonly_paths]
    post += [MaskPath(p) for p in linux.masked_paths]
    return steps, post


def _is_bind(m, opts):
    return opts.bind or m.type == "bind"


def needs_dev_setup(config):
    """runc populates /dev unless the container bind-mounts /dev from the host."""
    for i, m in enumerate(config.mounts):
        opts = mo.parse_mount_options(m.options, f"mounts[{i}].options")
        if _is_bind(m, opts) and clean(m.destination) == "/dev":
            return False
    return True


def plan_mount(config, index, m, cgroupns):
    """One config mount -> (MountFs or MountCgroup, None or (destination, ro flags))."""
    where = f"mounts[{index}]"
    opts = mo.parse_mount_options(m.options, f"{where}.options")
    if m.uid_mappings or m.gid_mappings:
        raise ConfigError(f"{where}.uidMappings", "idmapped mounts are not supported by pyrunc")
    dest = m.destination
    if not dest:
        raise ConfigError(f"{where}.destination", "mount destination is empty")
    if not dest.startswith("/"):
        dest = "/" + dest        # runc 1.1 still accepts relative destinations this way
    cdest = clean(dest)

    if m.type == "cgroup" and not _is_bind(m, opts):
        readonly = not opts.cleared & mo.MS_RDONLY
        return MountCgroup(dest, opts.flags & ~mo.MS_RDONLY, opts.propagation, readonly,
                           cgroupns), None

    flags = opts.flags
    if _is_bind(m, opts):
        flags |= mo.MS_BIND
        source = m.source
        if not source:
            raise ConfigError(f"{where}.source", "bind mount source is empty")
        if not source.startswith("/"):
            source = pathstr.join(config.bundle, source)
        _check_proc_destination(where, cdest, "bind")
        return MountFs(dest, source, "bind", flags, opts.data, opts.propagation,
                       flags & ~(mo.MS_BIND | mo.MS_REC | mo.MS_REMOUNT), opts.cleared,
                       opts.attr_set, opts.attr_clr), None

    fstype = m.type
    if not fstype:
        raise ConfigError(f"{where}.type", f"mount type is missing for {dest}")
    if fstype not in ("proc", "tmpfs", "mqueue", "sysfs"):
        _check_proc_destination(where, cdest, fstype)
    ro_later = None
    if flags & mo.MS_RDONLY and (fstype == "tmpfs" or cdest == "/dev"):
        # filled after mounting (devices, nested mount points): ro after the jail
        flags &= ~mo.MS_RDONLY
        ro_later = (dest, (flags | mo.MS_RDONLY) & ~(mo.MS_BIND | mo.MS_REC | mo.MS_REMOUNT))
    return MountFs(dest, m.source or fstype, fstype, flags, opts.data, opts.propagation, 0,
                   opts.cleared, opts.attr_set, opts.attr_clr,
                   opts.copyup and fstype == "tmpfs"), ro_later


def _check_proc_destination(where, cdest, kind):
    # Over /proc itself only procfs may go; below it only the lxcfs-style files.
    if cdest == "/proc":
        if kind != "bind":
            raise ConfigError(f"{where}.destination",
                              f"{cdest!r} cannot be mounted because it is not of type proc")
    elif cdest.startswith("/proc/") and cdest not in PROC_MOUNT_ALLOWED:
        raise ConfigError(f"{where}.destination",
                          f"{cdest!r} cannot be mounted because it is inside /proc")


def plan_devices(config, userns):
    """The default devices not overridden by linux.devices, then linux.devices."""
    configured = config.linux.devices
    paths = {clean(d.path) for d in configured}
    steps = [MakeDevice(path, "c", major, minor, 0o666, 0, 0, userns)
             for path, major, minor in DEFAULT_DEVICES if path not in paths]
    for i, d in enumerate(configured):
        where = f"linux.devices[{i}]"
        path = clean(d.path)
        if not d.path.startswith("/") or path in ("/", "/dev"):
            raise ConfigError(f"{where}.path", f"invalid device path {d.path!r}")
        if path == "/dev/ptmx":
            continue    # always the devpts ptmx symlink, like runc
        kind = "c" if d.type == "u" else d.type
        if kind not in ("c", "b", "p"):
            raise ConfigError(f"{where}.type", f"{d.type!r} is not a valid device type")
        mode = 0o666 if d.file_mode is None else d.file_mode & ~_S_IFMT
        major, minor = (0, 0) if kind == "p" else (d.major, d.minor)
        steps.append(MakeDevice(path, kind, major, minor, mode, d.uid or 0, d.gid or 0,
                                userns and kind != "p"))
    return steps
