"""Handlers for the jail (pivot_root / MS_MOVE) and what runs in the container's view after it.

After the jail every path is the container's own ("/proc/sys"), and ctx.root_fd
is the container's "/".  Paths are still opened through fds: masked and
read-only paths refuse symlinks outright (RESOLVE_NO_SYMLINKS), since they
name fixed kernel files where a symlink can only be a trick.
"""
import errno
import posix
import stat

from pyrunc.errors import RuntimeFailure
from pyrunc.executor import cgroupfs, paths
from pyrunc.executor import mounts as mnt
from pyrunc.executor.base import handles
from pyrunc.plan import mountopts as mo
from pyrunc.plan.steps import (MaskPath, MoveRoot, PivotRoot, ReadonlyPath, RemountRootReadonly,
                               ReopenDevNull)

DEV_NULL = posix.makedev(1, 3)


@handles(PivotRoot)
def pivot_root(step, ctx):
    sys = ctx.sys
    try:
        old = sys.open("/", sys.O_DIRECTORY)
        try:
            # pivot_root(".", ".") stacks the old root on top of the new one at
            # "."; after fchdir(old) we are on it and can detach it in place,
            # with no directory for it needed inside the rootfs.
            sys.fchdir(ctx.root_fd)
            sys.pivot_root(".", ".")
            sys.fchdir(old)
            # rslave first, or the detach would propagate to the host's mounts
            mnt.mount(sys, None, ".", None, mo.MS_SLAVE | mo.MS_REC)
            sys.umount2(".", sys.C.MNT_DETACH)
            sys.chdir("/")
        finally:
            sys.close(old)
    except OSError as e:
        raise mnt.failure("error jailing process inside rootfs: pivot_root", e) from None
    _after_jail(step, ctx)


@handles(ReopenDevNull)
def reopen_dev_null(step, ctx):
    # a shim hands the container the host's /dev/null, often opened read-only;
    # like runc, swap it for the container's own, opened read-write
    sys = ctx.sys
    null_fd = -1
    try:
        for fd in (0, 1, 2):
            try:
                st = sys.fstat(fd)
            except OSError:
                continue
            if st is None or not stat.S_ISCHR(st.st_mode) or st.st_rdev != posix.makedev(1, 3):
                continue
            if null_fd < 0:
                try:
                    null_fd = sys.open("/dev/null", posix.O_RDWR | sys.O_NOFOLLOW)
                except PermissionError:
                    return   # the device rules deny it: keep the stdio we were given
                own = sys.fstat(null_fd)
                if own is not None and (not stat.S_ISCHR(own.st_mode) or
                                        own.st_rdev != DEV_NULL):
                    raise RuntimeFailure("/dev/null in the container is not the null device")
            sys.dup2(null_fd, fd)
    except OSError as e:
        raise mnt.failure("reopening /dev/null for stdio", e) from None
    finally:
        if null_fd >= 0:
            sys.close(null_fd)


@handles(MoveRoot)
def move_root(step, ctx):
    sys = ctx.sys
    try:
        _hide_host_proc_and_sys(sys, ctx.extra.get("root_location") or step.rootfs)
        sys.fchdir(ctx.root_fd)
        mnt.mount(sys, ".", "/", None, mo.MS_MOVE)
        sys.chroot(".")
        sys.chdir("/")
    except OSError as e:
        raise mnt.failure("error jailing process inside rootfs: move root", e) from None
    _after_jail(step, ctx)


def _hide_host_proc_and_sys(sys, rootfs):
    # After MS_MOVE+chroot the host's /proc and /sys are still in our mount
    # namespace; the kernel's "may mount procfs/sysfs" check looks at every
    # full proc/sysfs mount there.  Detach them (or cover them when we may not).
    prefix = rootfs.rstrip("/") + "/"
    for m in cgroupfs.read_mountinfo(sys):
        if m.root != "/" or m.fstype not in ("proc", "sysfs") or \
                m.mountpoint == rootfs or m.mountpoint.startswith(prefix):
            continue
        try:
            mnt.mount(sys, None, m.mountpoint, None, mo.MS_SLAVE | mo.MS_REC)
        except OSError as e:
            if e.errno == errno.ENOENT:
                continue          # a parent went away with an earlier detach
            raise
        try:
            sys.umount2(m.mountpoint, sys.C.MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM):
                raise
            mnt.mount(sys, "tmpfs", m.mountpoint, "tmpfs", 0)


def _after_jail(step, ctx):
    sys = ctx.sys
    ctx.extra["root_location"] = "/"      # root_fd is "/" now; paths are the container's
    if step.propagation:
        try:
            mnt.mount(sys, None, "/", None, step.propagation)
        except OSError as e:
            raise mnt.failure("unable to apply root propagation flags", e) from None
    for dest, flags in step.readonly_mounts:
        try:
            t = mnt.Target(dest, paths.open_in_root(sys, ctx.root_fd, dest,
                                                    sys.O_PATH | sys.O_DIRECTORY), None)
            try:
                mnt.remount_readonly(sys, t, flags)
            finally:
                t.close(sys)
        except OSError as e:
            raise mnt.failure(f'error remounting "{dest}" as readonly', e) from None


@handles(RemountRootReadonly)
def remount_root_readonly(step, ctx):
    sys = ctx.sys
    flags = mo.MS_BIND | mo.MS_REMOUNT | mo.MS_RDONLY
    try:
        try:
            mnt.mount(sys, None, "/", None, flags)
        except mnt.MountCallError as e:
            if e.errno != errno.EPERM:
                raise
            # locked flags of the root mount (user namespace): keep them
            mnt.mount(sys, None, "/", None, flags | mnt.source_flags(sys, ctx.root_fd))
    except OSError as e:
        raise mnt.failure("error setting rootfs as readonly", e) from None


def _open_path(ctx, path):
    """O_PATH fd of a container path, no symlinks allowed; None if it does not exist."""
    sys = ctx.sys
    try:
        fd = paths.open_no_symlinks(sys, ctx.root_fd, path)
    except FileNotFoundError:
        return None, None
    st = sys.fstat(fd)
    if stat.S_ISLNK(st.st_mode):
        sys.close(fd)
        raise OSError(errno.ELOOP, "refusing a symlink", path)
    return fd, st


@handles(ReadonlyPath)
def readonly_path(step, ctx):
    sys = ctx.sys
    try:
        fd, _ = _open_path(ctx, step.path)
        if fd is None:
            return
        t = mnt.Target(step.path, fd, lambda: paths.open_no_symlinks(sys, ctx.root_fd, step.path))
        try:
            mnt.mount(sys, t.path, t.path, None, mo.MS_BIND | mo.MS_REC, shown=step.path)
            t.reopen(sys)
            # nosuid/nodev/noexec of the mount underneath stay (they may be locked)
            keep = mnt.source_flags(sys, t.fd) & (mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC)
            mnt.mount(sys, t.path, t.path, None,
                      keep | mo.MS_BIND | mo.MS_REMOUNT | mo.MS_RDONLY, shown=step.path)
        finally:
            t.close(sys)
    except OSError as e:
        raise mnt.failure(f'error making "{step.path}" read-only', e) from None


@handles(MaskPath)
def mask_path(step, ctx):
    sys = ctx.sys
    try:
        fd, st = _open_path(ctx, step.path)
        if fd is None:
            return
        try:
            p = paths.fd_path(fd)
            if stat.S_ISDIR(st.st_mode):
                mnt.mount(sys, "tmpfs", p, "tmpfs", mo.MS_RDONLY, shown=step.path)
            else:
                null = _dev_null(ctx)
                try:
                    mnt.mount(sys, paths.fd_path(null), p, None, mo.MS_BIND, shown=step.path)
                finally:
                    sys.close(null)
        finally:
            sys.close(fd)
    except OSError as e:
        raise mnt.failure(f'error masking "{step.path}"', e) from None


def _dev_null(ctx):
    """The container's /dev/null, refused unless it is the real char device 1:3.

    A container that replaces /dev/null with a file or a symlink would
    otherwise have us bind *that* over the masked paths (CVE-2025-31133).
    """
    sys = ctx.sys
    fd = paths.open_no_symlinks(sys, ctx.root_fd, "/dev/null")
    st = sys.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != DEV_NULL:
        sys.close(fd)
        raise RuntimeFailure("/dev/null in the container is not the char device 1:3; "
                             "refusing to mask paths with it")
    return fd

