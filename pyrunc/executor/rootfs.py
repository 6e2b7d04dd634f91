"""Handlers for the rootfs steps (plan/rootfs.py): mounts, devices, the jail, paths.

Everything is done through ctx.sys and through fds: targets are resolved
inside the rootfs (executor/paths.py) and mounted via /proc/self/fd/N
(executor/mounts.py).  Failures become RuntimeFailure with runc's wording,
e.g. `error mounting "proc" to rootfs at "/proc": mount proc:/proc (via
/proc/self/fd/7), flags: 0xe: permission denied`.
"""
import errno
import posix
import stat

from pyrunc.errors import RuntimeFailure
from pyrunc.executor import cgroupfs, paths
from pyrunc.executor import mounts as mnt
from pyrunc.executor.base import handles
from pyrunc.plan import mountopts as mo
from pyrunc.plan.steps import (BindRootfs, MakeDevice, MakeSymlink, MountCgroup, MountFs,
                               SetRootPropagation)

# Host filesystems a user namespace may not mount afresh; runc binds them instead.
_USERNS_BIND_FALLBACK = {"sysfs": "/sys", "mqueue": "/dev/mqueue"}
_DEV_TYPES = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


# --- before any mount ---------------------------------------------------------

@handles(SetRootPropagation)
def set_root_propagation(step, ctx):
    try:
        mnt.mount(ctx.sys, None, "/", None, step.flags)
    except OSError as e:
        raise mnt.failure("error preparing rootfs", e) from None
    ctx.extra["root_propagation"] = step.flags


@handles(BindRootfs)
def bind_rootfs(step, ctx):
    sys = ctx.sys
    try:
        if not _none_shared(ctx.extra.get("root_propagation", 0)):
            _parent_mount_private(sys, step.path)
        fd = sys.open(step.path, sys.O_PATH | sys.O_DIRECTORY)
        try:
            p = paths.fd_path(fd)
            mnt.mount(sys, p, p, "bind", mo.MS_BIND | mo.MS_REC, shown=step.path)
        finally:
            sys.close(fd)
        # the bind hides what fd saw: the root is the new mount on top
        ctx.root_fd = sys.open(step.path, sys.O_PATH | sys.O_DIRECTORY)
    except OSError as e:
        raise mnt.failure("error preparing rootfs", e) from None
    ctx.extra["root_location"] = paths.fd_location(sys, ctx.root_fd)


def _none_shared(propagation):
    """Whether SetRootPropagation left no mount of ours shared (rslave, the
    default, or rprivate): then no parent mount needs making private, and
    mountinfo need not be read (~0.2 ms)."""
    return bool(propagation & mo.MS_REC and propagation & (mo.MS_SLAVE | mo.MS_PRIVATE))


def _parent_mount_private(sys, rootfs):
    # pivot_root refuses a new root whose parent mount is shared, and a shared
    # parent would also carry our bind back to the host: make it private.
    best = None
    for m in cgroupfs.read_mountinfo(sys):
        mp = m.mountpoint.rstrip("/") or "/"
        if (rootfs == mp or rootfs.startswith(mp.rstrip("/") + "/")) and \
                (best is None or len(mp) > len(best.mountpoint)):
            best = m
    if best is not None and any(f.startswith("shared:") for f in best.optional):
        mnt.mount(sys, None, best.mountpoint, None, mo.MS_PRIVATE)


# --- config mounts --------------------------------------------------------------

@handles(MountFs)
def mount_fs(step, ctx):
    try:
        if step.flags & mo.MS_BIND:
            _bind(step, ctx)
        elif step.fstype in ("proc", "sysfs"):
            _special(step, ctx)
        elif step.fstype == "tmpfs":
            t = mnt.mount_tmpfs(ctx, step.destination, step.source, step.flags, step.data,
                                step.propagation, step.copyup)
            _finish(ctx, t, step)
        else:
            _plain(step, ctx, mnt.dir_target(ctx, step.destination))
    except OSError as e:
        raise RuntimeFailure(f'error mounting "{step.source}" to rootfs at '
                             f'"{step.destination}": {mnt.explain(e)}') from None


def _finish(ctx, t, step):
    try:
        mnt.apply_recursive_attrs(ctx.sys, t, step.attr_set, step.attr_clr)
    finally:
        t.close(ctx.sys)


def _plain(step, ctx, t):
    sys = ctx.sys
    try:
        try:
            mnt.mount(sys, step.source, t.path, step.fstype, step.flags, step.data,
                      shown=step.destination)
        except mnt.MountCallError as e:
            host = _USERNS_BIND_FALLBACK.get(step.fstype)
            if not (ctx.userns and host and e.errno == errno.EPERM):
                raise
            t.close(sys)
            try:
                return _bind(step, ctx, source=host, flags=step.flags | mo.MS_BIND | mo.MS_REC)
            except OSError:
                raise e from None   # the refusal is the news, not the fallback's failure
        t.reopen(sys)
        mnt.apply_propagation(sys, t, step.propagation)
    except BaseException:
        t.close(sys)
        raise
    _finish(ctx, t, step)


def _special(step, ctx):
    """proc and sysfs go on a plain directory, never through a symlink."""
    sys, root = ctx.sys, ctx.root_fd
    flags = sys.O_PATH | sys.O_NOFOLLOW
    resolve = sys.C.RESOLVE_IN_ROOT | sys.C.RESOLVE_NO_SYMLINKS | sys.C.RESOLVE_NO_MAGICLINKS

    def opener():
        return sys.openat2(root, paths.relative(step.destination), flags, 0, resolve)

    try:
        fd = opener()
    except FileNotFoundError:
        sys.close(paths.mkdir_all_in_root(sys, root, step.destination))
        fd = opener()
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        fd = -1
    if fd < 0 or not stat.S_ISDIR(sys.fstat(fd).st_mode):
        if fd >= 0:
            sys.close(fd)
        raise OSError(errno.ENOTDIR,
                      f'filesystem "{step.fstype}" must be mounted on ordinary directory')
    _plain(step, ctx, mnt.Target(step.destination, fd, opener))


def _bind(step, ctx, source=None, flags=None):
    sys = ctx.sys
    source = source or step.source
    flags = step.flags if flags is None else flags
    src = sys.open(source, sys.O_PATH)
    try:
        is_dir = stat.S_ISDIR(sys.fstat(src).st_mode)

        def procfs_source():   # only procfs may be bound over /proc (runc's rule too)
            return sys.fstatfs_magic(src) == sys.C.PROC_SUPER_MAGIC
        t = mnt.dir_target(ctx, step.destination, proc_ok=procfs_source) if is_dir else \
            mnt.file_target(ctx, step.destination, proc_ok=procfs_source)
        try:
            mnt.mount(sys, paths.fd_path(src), t.path, "bind", flags & (mo.MS_BIND | mo.MS_REC),
                      shown=step.destination, shown_source=source)
            t.reopen(sys)
            mnt.apply_propagation(sys, t, step.propagation)
            remount = flags & ~(mo.MS_BIND | mo.MS_REC | mo.MS_REMOUNT)
            if remount:
                mnt.remount_bind(sys, t, remount, source_fd=src, cleared=step.cleared_flags)
        except BaseException:
            t.close(sys)
            raise
        _finish(ctx, t, step)
    finally:
        sys.close(src)


@handles(MountCgroup)
def mount_cgroup(step, ctx):
    try:
        cgroupfs.mount_cgroup(step, ctx)
    except OSError as e:
        raise RuntimeFailure(f'error mounting "cgroup" to rootfs at "{step.destination}": '
                             f"{mnt.explain(e)}") from None


# --- /dev -----------------------------------------------------------------------

@handles(MakeDevice)
def make_device(step, ctx):
    try:
        _make_device(step, ctx)
    except OSError as e:
        raise mnt.failure(f"error creating device node {step.path}", e) from None


def _make_device(step, ctx):
    sys = ctx.sys
    parent, name = paths.resolve_parent_in_root(sys, ctx.root_fd, step.path)
    try:
        if not step.bind_from_host:
            try:
                sys.mknodat(parent, name, _DEV_TYPES[step.type] | step.file_mode,
                            posix.makedev(step.major, step.minor))
            except FileExistsError:
                return
            except PermissionError:
                _bind_device(step, ctx, parent, name)   # mknod refused: as in a userns
                return
            fd = sys.openat2(parent, name, sys.O_PATH | sys.O_NOFOLLOW, 0, 0)
            try:
                st = sys.fstat(fd)
                if stat.S_IFMT(st.st_mode) != _DEV_TYPES[step.type]:
                    raise OSError(errno.EEXIST, "device node replaced while creating it",
                                  step.path)
                p = paths.fd_path(fd)
                sys.chown(p, step.uid, step.gid)
                sys.chmod(p, step.file_mode)
            finally:
                sys.close(fd)
        else:
            _bind_device(step, ctx, parent, name)
    finally:
        sys.close(parent)


def _bind_device(step, ctx, parent, name):
    sys = ctx.sys
    try:
        sys.close(sys.openat2(parent, name, posix.O_WRONLY | posix.O_CREAT | sys.O_NOFOLLOW, 0o600, 0))
    except IsADirectoryError:
        pass   # the mount below says what is wrong
    src = sys.open(step.path, sys.O_PATH)
    try:
        fd = sys.openat2(parent, name, sys.O_PATH | sys.O_NOFOLLOW, 0, 0)
        try:
            mnt.mount(sys, paths.fd_path(src), paths.fd_path(fd), "bind", mo.MS_BIND,
                      shown=step.path, shown_source=step.path)
        finally:
            sys.close(fd)
    finally:
        sys.close(src)


@handles(MakeSymlink)
def make_symlink(step, ctx):
    sys = ctx.sys
    try:
        parent, name = paths.resolve_parent_in_root(sys, ctx.root_fd, step.link)
        try:
            if step.replace:
                try:
                    sys.unlinkat(parent, name)
                except FileNotFoundError:
                    pass
                except IsADirectoryError:
                    sys.unlinkat(parent, name, is_dir=True)
            try:
                sys.symlinkat(step.target, parent, name)
            except FileExistsError:
                pass
        finally:
            sys.close(parent)
    except OSError as e:
        raise mnt.failure(f"error creating symlink {step.link} -> {step.target}", e) from None


# The jail and the post-pivot steps are in jail.py; importing it here
# registers them whenever the rootfs handlers are loaded.
from pyrunc.executor import jail  # noqa: E402,F401
