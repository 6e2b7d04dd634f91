"""Mount primitives the rootfs handlers share: every mount targets an fd.

A target is resolved in-root to an O_PATH fd (executor/paths.py) and mount(2)
is given "/proc/self/fd/N", so the kernel mounts on the inode we resolved.
A mount hides the inode our fd points at, so anything done to the new mount
(propagation, remount, mount_setattr) first re-resolves the path and checks it
still leads to the same place (CVE-2021-30465: a swapped path is an error,
never a mount somewhere else).
"""
import errno
import posix
import stat
import time

from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor import paths
from pyrunc.plan import mountopts as mo
from pyrunc.record import Record

# Per-mount flags a less privileged user namespace cannot clear once set
# (the kernel's MNT_LOCK_*): a remount must carry them again.
LOCKED_FLAGS = (mo.MS_RDONLY | mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC | mo.MS_NOATIME
                | mo.MS_NODIRATIME | mo.MS_RELATIME)
_ATIME_FLAGS = mo.MS_NOATIME | mo.MS_RELATIME | mo.MS_STRICTATIME
# statvfs f_flag bits (ST_*) with the same value as the MS_* flag
_STATVFS_AS_MS = LOCKED_FLAGS | mo.MS_SYNCHRONOUS | mo.MS_MANDLOCK


class MountCallError(OSError):
    """A failed mount(2), described the way runc describes it; errno kept."""

    def __str__(self):
        return self.strerror


def explain(err):
    """One-line text for an OSError raised while setting up the rootfs."""
    if isinstance(err, MountCallError):
        return str(err)
    # an OSError raised here with its own message (not errno's text) keeps it
    own = err.strerror and err.errno and err.strerror != posix.strerror(err.errno)
    text = err.strerror if own else oserror_text(err)
    return f"{err.filename}: {text}" if err.filename else text


def failure(what, err):
    return RuntimeFailure(f"{what}: {explain(err)}")


def mount(sys, source, target, fstype, flags, data=None, *, shown=None, shown_source=None):
    """mount(2); `shown`/`shown_source` are the paths to name in an error."""
    try:
        sys.mount(source, target, fstype, flags, data or None)
    except OSError as e:
        where = shown or target
        source = shown_source or source
        text = "mount " + (f"{source}:{where}" if source else where)
        if shown and target != shown:
            text += f" (via {target})"
        if flags:
            text += f", flags: {flags:#x}"
        if data:
            text += f", data: {data}"
        raise MountCallError(e.errno, f"{text}: {oserror_text(e)}") from None


class Target(Record, frozen=False):
    """An in-root mount target: its container path, our fd, and how to reopen it."""
    dest: str
    fd: int
    opener: object          # () -> fresh fd of the same path

    @property
    def path(self):
        return paths.fd_path(self.fd)

    def reopen(self, sys):
        """After mounting on it: an fd of the new mount, checked to be the same place."""
        old = paths.fd_location(sys, self.fd)
        fd = self.opener()
        new = paths.fd_location(sys, fd)
        sys.close(self.fd)
        self.fd = fd
        if old is not None and new is not None and old != new:
            raise OSError(errno.EXDEV, f"mount target moved from {old} to {new} while mounting")
        return self

    def close(self, sys):
        if self.fd >= 0:
            sys.close(self.fd)
            self.fd = -1


def dir_target(ctx, dest, mode=0o755, proc_ok=None):
    """proc_ok: () -> whether this mount may cover /proc itself (a procfs bind)."""
    sys, root = ctx.sys, ctx.root_fd
    t = Target(dest, paths.mkdir_all_in_root(sys, root, dest, mode),
               lambda: paths.open_in_root(sys, root, dest, sys.O_PATH | sys.O_DIRECTORY))
    _check_inside(ctx, t, proc_ok)
    return t


def file_target(ctx, dest, proc_ok=None):
    sys, root = ctx.sys, ctx.root_fd
    t = Target(dest, paths.create_file_in_root(sys, root, dest),
               lambda: paths.open_in_root(sys, root, dest, sys.O_PATH))
    _check_inside(ctx, t, proc_ok)
    return t


def _check_inside(ctx, t, proc_ok=None):
    try:
        paths.check_inside(ctx.sys, t.fd, ctx.extra.get("root_location"))
        _check_proc(ctx, t, proc_ok)
    except OSError:
        t.close(ctx.sys)
        raise


def _check_proc(ctx, t, proc_ok):
    """The plan checks destinations against /proc as text; an image symlink
    (p -> proc, dest /p/1) reaches /proc anyway.  Check where the target
    resolved: a look-alike over /proc/<pid> would catch every later
    /proc/self/fd/N, moving masks and the read-only /proc/sys elsewhere."""
    from pyrunc.plan.rootfs import PROC_MOUNT_ALLOWED
    root = ctx.extra.get("root_location")
    where = paths.fd_location(ctx.sys, t.fd) if root else None
    if where is None:
        return
    root = root.rstrip("/")
    if where != root and not where.startswith(root + "/"):
        return
    inner = where[len(root):] or "/"
    if inner == "/proc":
        if proc_ok is None or not proc_ok():
            raise OSError(errno.EINVAL, f'"{t.dest}" cannot be mounted because it is '
                                        f'not of type proc')
    elif inner.startswith("/proc/") and inner not in PROC_MOUNT_ALLOWED:
        raise OSError(errno.EINVAL, f'"{t.dest}" (at "{inner}") cannot be mounted because '
                                    f'it is inside /proc')


def apply_propagation(sys, target, propagation):
    for flag in propagation:
        mount(sys, None, target.path, None, flag, shown=target.dest)


def apply_recursive_attrs(sys, target, attr_set, attr_clr):
    if attr_set or attr_clr:
        sys.mount_setattr(target.fd, "", sys.C.AT_EMPTY_PATH | sys.C.AT_RECURSIVE,
                          attr_set, attr_clr)


def source_flags(sys, fd):
    """The MS_* flags of the mount `fd` is on (from fstatvfs)."""
    return sys.fstatvfs(fd).f_flag & _STATVFS_AS_MS


def remount_bind(sys, target, flags, *, source_fd=None, cleared=0):
    """MS_REMOUNT|MS_BIND with `flags`, keeping the source's locked flags if we must.

    In a user namespace the kernel refuses (EPERM) a remount that would drop a
    flag locked on the source mount (e.g. nodev on a host /tmp).  Like runc,
    retry with the source's locked flags added -- unless the options asked
    explicitly for one of them to be off, or for a different atime mode.
    """
    base = mo.MS_BIND | mo.MS_REMOUNT
    try:
        mount(sys, None, target.path, None, base | flags, shown=target.dest)
        return
    except MountCallError as e:
        if e.errno != errno.EPERM:
            raise
        first = e
    locked = source_flags(sys, target.fd if source_fd is None else source_fd) & LOCKED_FLAGS
    if locked & cleared & ~_ATIME_FLAGS:
        raise first
    if flags & _ATIME_FLAGS and locked & _ATIME_FLAGS != flags & _ATIME_FLAGS:
        raise first
    if not flags & _ATIME_FLAGS:
        locked &= ~_ATIME_FLAGS      # atime is preserved by the kernel when not given
    if locked & ~flags == 0:
        raise first                  # nothing to add: the EPERM is about something else
    mount(sys, None, target.path, None, base | flags | locked, shown=target.dest)


def remount_readonly(sys, target, flags, tries=5):
    """ro remount of a tmpfs or /dev after the jail (EBUSY retried as runc does)."""
    for i in range(tries):
        try:
            mount(sys, None, target.path, None,
                  flags | mo.MS_REMOUNT | mo.MS_BIND | mo.MS_RDONLY, shown=target.dest)
            return
        except MountCallError as e:
            if e.errno != errno.EBUSY or i == tries - 1:
                raise
            time.sleep(0.1)


def mount_tmpfs(ctx, dest, source, flags, data, propagation, copyup=False):
    """tmpfs at dest: an existing directory keeps its mode (and with tmpcopyup, its files)."""
    sys = ctx.sys
    try:
        fd = paths.open_in_root(sys, ctx.root_fd, dest, sys.O_PATH | sys.O_DIRECTORY)
        old_mode = stat.S_IMODE(sys.fstat(fd).st_mode)
        sys.close(fd)
    except FileNotFoundError:
        old_mode = None
    t = dir_target(ctx, dest)
    lower = -1
    try:
        if copyup:
            # an fd opened before mounting still reads the directory underneath
            lower = sys.open(t.path, sys.O_DIRECTORY)
        mount(sys, source, t.path, "tmpfs", flags, data, shown=dest)
        t.reopen(sys)
        if copyup:
            upper = sys.open(t.path, sys.O_DIRECTORY)
            try:
                sys.copy_tree(lower, upper)
            finally:
                sys.close(upper)
        if old_mode is not None:
            sys.chmod(t.path, old_mode)
        apply_propagation(sys, t, propagation)
        return t
    except BaseException:
        t.close(sys)
        raise
    finally:
        if lower >= 0:
            sys.close(lower)
