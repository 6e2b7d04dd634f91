"""`type: cgroup` mounts, and the one place that probes the host's cgroup layout.

What a container sees at /sys/fs/cgroup depends on the host:

- cgroup v1 (legacy or hybrid, like this project's build host): as runc 1.1
  does, a tmpfs (nosuid,nodev,noexec, mode=755) at the destination, then one
  directory per v1 hierarchy named like the host's mount point ("cpu",
  "cpu,cpuacct", "systemd"), plus symlinks for co-mounted controllers
  ("cpu" -> "cpu,cpuacct").  In a cgroup namespace each is a fresh cgroupfs
  mount of that hierarchy; otherwise it is a bind of the host directory of the
  init's own cgroup (read from /proc/self/cgroup), so the container sees its
  own cgroup as the root.  A hybrid host's cgroup2 "unified" mount is not
  shown, as with runc 1.1.
- cgroup v2 only: in a cgroup namespace a fresh cgroup2 mount; otherwise
  (or when that mount is refused) a bind of the init's own cgroup directory.
  runc would mount the whole host tree there; we do not.

The cgroupfs mounts and binds are read-only unless the options say rw
(step.readonly), so a container cannot write host cgroup files
(CVE-2023-25809).  The tmpfs itself stays writable, as with runc.
"""
import errno
import posix

from pyrunc import pathstr
from pyrunc.cgroups.host import mountinfo_entries
from pyrunc.executor import paths
from pyrunc.executor import mounts as mnt
from pyrunc.plan import mountopts as mo
from pyrunc.record import Record

_BASE = mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC
CGROUP_ROOT = "/sys/fs/cgroup"


class MountInfo(Record):
    """One line of /proc/self/mountinfo (the fields we use)."""
    root: str
    mountpoint: str
    optional: tuple          # "shared:1", "master:2", ...
    fstype: str
    source: str
    super_options: tuple


class Hierarchy(Record):
    name: str                # base name of the host mount point: "cpu,cpuacct"
    subsystems: str          # mount data for a fresh cgroupfs: "cpu,cpuacct", "name=systemd"
    source: str              # host directory of the init's own cgroup in it


class CgroupLayout(Record):
    unified: bool            # /sys/fs/cgroup is cgroup2 (no v1 hierarchies)
    hierarchies: tuple = ()  # v1 hierarchies, in mountinfo order
    v2_dir: str = ""         # host directory of the init's own v2 cgroup


def parse_mountinfo(text):
    return [MountInfo(*entry) for entry in mountinfo_entries(text)]


def read_mountinfo(sys):
    return parse_mountinfo(sys.read_file("/proc/self/mountinfo").decode())


def parse_proc_cgroup(text):
    """/proc/self/cgroup -> [(controllers tuple, path)]; v2's line has no controllers."""
    result = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            result.append((tuple(c for c in parts[1].split(",") if c), parts[2]))
    return result


def probe_layout(mountinfo, proc_cgroup):
    """The host's cgroup layout, from parsed mountinfo and /proc/self/cgroup."""
    top = [m for m in mountinfo if m.mountpoint == CGROUP_ROOT]
    if top and top[-1].fstype == "cgroup2":
        own = next((p for ctrls, p in proc_cgroup if not ctrls), "/")
        return CgroupLayout(True, (), _host_dir(top[-1], own))
    hierarchies, seen = [], set()
    for m in mountinfo:
        if m.fstype != "cgroup":
            continue
        opts = set(m.super_options)
        for ctrls, path in proc_cgroup:
            if ctrls and set(ctrls) <= opts and ctrls not in seen:
                seen.add(ctrls)
                hierarchies.append(Hierarchy(pathstr.basename(m.mountpoint),
                                             ",".join(ctrls), _host_dir(m, path)))
                break
    return CgroupLayout(False, tuple(hierarchies))


def _host_dir(m, own):
    root = m.root.rstrip("/")
    rel = own[len(root):] if own == root or own.startswith(root + "/") else ""
    return pathstr.normpath(m.mountpoint + rel)


def probe(sys):
    """The one probe: read the two proc files and decide v1 or v2.  Only the
    lines probe_layout looks at are parsed (the init's critical path)."""
    lines = [line for line in sys.read_file("/proc/self/mountinfo").decode().splitlines()
             if " - cgroup" in line or f" {CGROUP_ROOT} " in line]
    return probe_layout(parse_mountinfo("\n".join(lines)),
                        parse_proc_cgroup(sys.read_file("/proc/self/cgroup").decode()))


def mount_cgroup(step, ctx):
    layout = probe(ctx.sys)
    if layout.unified:
        _mount_v2(step, ctx, layout)
    else:
        _mount_v1(step, ctx, layout)


def _ro(step):
    return mo.MS_RDONLY if step.readonly else 0


def _mount_v1(step, ctx, layout):
    sys = ctx.sys
    mnt.mount_tmpfs(ctx, step.destination, "tmpfs", _BASE, "mode=755",
                    step.propagation).close(sys)
    fast = not step.cgroupns and not ctx.userns and not step.propagation
    # the tmpfs is ours, made a moment ago: one fd on its root serves every
    # hierarchy (a resolution in the root each would be ~40 us, ~0.4 ms a create)
    root = mnt.dir_target(ctx, step.destination)
    try:
        for h in layout.hierarchies:
            dest = pathstr.join(step.destination, h.name)
            if fast:
                fast = _clone_bind(step, ctx, root, h.source, dest, h.name)
                if fast:
                    continue
            if step.cgroupns:
                t = mnt.dir_target(ctx, dest)
                try:
                    name = h.subsystems[5:] if h.subsystems.startswith("name=") else "cgroup"
                    mnt.mount(sys, name, t.path, "cgroup", _BASE | _ro(step), h.subsystems,
                              shown=dest)
                finally:
                    t.close(sys)
            else:
                _bind_dir(step, ctx, h.source, dest, mo.MS_BIND | mo.MS_REC,
                          step.flags | _ro(step))
        for h in layout.hierarchies:
            if "," not in h.name:
                continue
            for part in h.name.split(","):
                try:
                    sys.symlinkat(h.name, root.fd, part)
                except FileExistsError:
                    pass
    finally:
        root.close(sys)


# MS_* flags of a cgroup mount -> MOUNT_ATTR_* (mount_setattr)
_ATTRS = ((mo.MS_RDONLY, mo.MOUNT_ATTR_RDONLY), (mo.MS_NOSUID, mo.MOUNT_ATTR_NOSUID),
          (mo.MS_NODEV, mo.MOUNT_ATTR_NODEV), (mo.MS_NOEXEC, mo.MOUNT_ATTR_NOEXEC),
          (mo.MS_NODIRATIME, mo.MOUNT_ATTR_NODIRATIME))
_ATIME = ((mo.MS_NOATIME, mo.MOUNT_ATTR_NOATIME), (mo.MS_STRICTATIME, mo.MOUNT_ATTR_STRICTATIME))


def _clone_bind(step, ctx, parent, source, dest, name):
    """Bind source, read-only etc., on a new directory `name` of the tmpfs at
    step.destination (parent: its root): a detached copy of the source mount gets its flags
    (mount_setattr) and is then attached to the directory's fd (move_mount).
    The tmpfs is ours, made a moment ago and out of the container's reach, so
    its entries need none of the in-root checks and re-resolving a path
    under the container's control does (executor/mounts.py): 9 syscalls a
    hierarchy instead of ~26.  False (nothing done) where the kernel has no
    new mount API (linux < 5.12): the caller binds the classic way."""
    sys = ctx.sys
    flags = step.flags | _ro(step)
    attr_set = sum(a for f, a in _ATTRS if flags & f)
    attr_set |= next((a for f, a in _ATIME if flags & f), mo.MOUNT_ATTR_RELATIME)
    src = tree = target = -1
    try:
        src = sys.open(source, sys.O_PATH | sys.O_DIRECTORY)
        C = sys.C
        try:
            tree = sys.open_tree(src, "", C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC |
                                 C.AT_EMPTY_PATH | C.AT_RECURSIVE)
            sys.mount_setattr(tree, "", C.AT_EMPTY_PATH | C.AT_RECURSIVE, attr_set,
                              mo.MOUNT_ATTR__ATIME)
        except OSError as e:
            if e.errno in (errno.ENOSYS, errno.EINVAL):
                return False
            raise
        sys.mkdirat(parent.fd, name, 0o755)
        target = paths.open_no_symlinks(sys, parent.fd, name, sys.O_PATH | sys.O_DIRECTORY)
        try:
            sys.move_mount(tree, "", target, "", C.MOVE_MOUNT_F_EMPTY_PATH |
                           C.MOVE_MOUNT_T_EMPTY_PATH)
        except OSError as e:
            raise mnt.MountCallError(e.errno, f"mount {source}:{dest} (move_mount): "
                                              f"{posix.strerror(e.errno).lower()}") from None
        return True
    finally:
        for fd in (target, tree, src):
            if fd >= 0:
                sys.close(fd)


def _mount_v2(step, ctx, layout):
    sys = ctx.sys
    flags = step.flags | _ro(step)
    if step.cgroupns:
        t = mnt.dir_target(ctx, step.destination)
        try:
            mnt.mount(sys, "cgroup", t.path, "cgroup2", flags, shown=step.destination)
            t.reopen(sys)
            mnt.apply_propagation(sys, t, step.propagation)
            return
        except mnt.MountCallError as e:
            # a user namespace without its own cgroup namespace may not mount cgroup2
            if e.errno not in (errno.EPERM, errno.EBUSY):
                raise
        finally:
            t.close(sys)
    _bind_dir(step, ctx, layout.v2_dir, step.destination, mo.MS_BIND, flags)


def _bind_dir(step, ctx, source, dest, bind_flags, flags):
    sys = ctx.sys
    src = sys.open(source, sys.O_PATH | sys.O_DIRECTORY)
    try:
        t = mnt.dir_target(ctx, dest)
        try:
            mnt.mount(sys, paths.fd_path(src), t.path, "bind", bind_flags, shown=dest,
                      shown_source=source)
            t.reopen(sys)
            mnt.apply_propagation(sys, t, step.propagation)
            remount = flags & ~(mo.MS_BIND | mo.MS_REC | mo.MS_REMOUNT)
            if remount:
                mnt.remount_bind(sys, t, remount, source_fd=src)
        finally:
            t.close(sys)
    finally:
        sys.close(src)
