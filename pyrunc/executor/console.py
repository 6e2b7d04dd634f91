"""The container's terminal: a pty from the container's own devpts.

With process.terminal the init (still before pivot_root, with the rootfs
mounts in place) opens the ptmx of the container's devpts, sends the master
to the client over --console-socket (SCM_RIGHTS, as runc does, with
"/dev/ptmx" as the message body), bind-mounts the slave on /dev/console and
makes it its stdio and controlling terminal.  The client (containerd's shim,
conmon) then owns the master; the init keeps no copy.
"""
import _socket  # noqa: F401 - syscalls.send_fds imports it after pivot_root: be sure it can
import errno
import posix
import stat

from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor import paths
from pyrunc.executor.base import handles
from pyrunc.plan.steps import SetupConsole

PTMX_RDEV = posix.makedev(5, 2)
# runc sends the master's file name; clients take only the fd, but some log it
PAYLOAD = b"/dev/ptmx"


def open_slave(sys, master_fd, console_size=None):
    """Unlock the pty, open its slave through the master and size it.

    Returns (slave_fd, "/dev/pts/N").  TIOCGPTPEER opens the slave that
    belongs to this very master, with no path lookup in a devpts the
    container controls.
    """
    sys.pty_unlock(master_fd)
    name = f"/dev/pts/{sys.pty_number(master_fd)}"
    slave = sys.pty_peer(master_fd, posix.O_RDWR | posix.O_NOCTTY)
    if console_size and console_size[0] and console_size[1]:
        rows, cols = console_size
        try:
            sys.set_winsize(master_fd, rows, cols)
        except OSError:
            sys.close(slave)
            raise
    return slave, name


def send_master(sys, socket_fd, master_fd):
    sys.send_fds(socket_fd, PAYLOAD, [master_fd])


def make_pty(sys, master_fd, socket_fd, console_size=None):
    """open_slave + send_master: everything but the mounts and the stdio switch."""
    slave, name = open_slave(sys, master_fd, console_size)
    try:
        send_master(sys, socket_fd, master_fd)
    except OSError:
        sys.close(slave)
        raise
    return slave, name


@handles(SetupConsole)
def setup_console(step, ctx):
    sys = ctx.sys
    if ctx.console_socket_fd < 0:
        raise RuntimeFailure("process.terminal is set but no --console-socket was given")
    # the init has an fd of the rootfs; an `exec` process is already inside it
    root_fd = ctx.root_fd if ctx.root_fd >= 0 else sys.open("/", sys.O_PATH | sys.O_DIRECTORY)
    try:
        slave = _make_console(step, ctx, root_fd)
    finally:
        if root_fd != ctx.root_fd:
            sys.close(root_fd)
    attach_stdio(sys, slave, step.take_ctty)


def _make_console(step, ctx, root_fd):
    sys = ctx.sys
    try:
        master = paths.open_in_root(sys, root_fd, "/dev/pts/ptmx", posix.O_RDWR | posix.O_NOCTTY)
    except OSError as e:
        raise RuntimeFailure(f"open /dev/pts/ptmx in the rootfs: {oserror_text(e)} "
                             "(process.terminal needs a devpts mount on /dev/pts)") from None
    try:
        _check_ptmx(sys, master)
        slave, _ = open_slave(sys, master, step.console_size)
        try:
            if step.bind_console:
                bind_console(sys, root_fd, slave)
            send_master(sys, ctx.console_socket_fd, master)
        except BaseException:
            sys.close(slave)
            raise
    except OSError as e:
        raise RuntimeFailure(f"setting up the console: {oserror_text(e)}") from None
    finally:
        sys.close(master)
    return slave


def _check_ptmx(sys, fd):
    st = sys.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != PTMX_RDEV:
        raise RuntimeFailure("/dev/pts/ptmx in the rootfs is not the ptmx device")


def bind_console(sys, root_fd, slave_fd):
    """Bind-mount the slave on the rootfs's /dev/console, creating the file.

    CVE-2025-52565: /dev/console must not be a symlink (we would mount over
    whatever it points at), and the mount source is the pty fd itself, not a
    /dev/pts/N path the container could swap.
    """
    dev = paths.mkdir_all_in_root(sys, root_fd, "/dev")
    try:
        target = _console_fd(sys, dev)
        try:
            sys.mount(paths.fd_path(slave_fd), paths.fd_path(target), None, sys.C.MS_BIND)
        finally:
            sys.close(target)
    finally:
        sys.close(dev)


def _console_fd(sys, dev_fd):
    resolve = sys.C.RESOLVE_BENEATH | sys.C.RESOLVE_NO_SYMLINKS
    try:
        fd = sys.openat2(dev_fd, "console", sys.O_PATH | sys.O_NOFOLLOW, 0, resolve)
    except FileNotFoundError:
        try:
            made = sys.openat2(dev_fd, "console",
                               posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | sys.O_NOFOLLOW, 0o666,
                               resolve)
            sys.close(made)
        except FileExistsError:
            pass  # appeared meanwhile: the open below and the check decide
        fd = sys.openat2(dev_fd, "console", sys.O_PATH | sys.O_NOFOLLOW, 0, resolve)
    st = sys.fstat(fd)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):
        sys.close(fd)
        raise RuntimeFailure("/dev/console in the rootfs is not a file or a device "
                             "(a symlink?): refusing to mount the console over it")
    return fd


def attach_stdio(sys, slave_fd, take_ctty=True):
    """The slave becomes fds 0-2 and the controlling terminal of a new session."""
    for fd in (0, 1, 2):
        sys.dup2(slave_fd, fd, True)
    if slave_fd > 2:
        sys.close(slave_fd)
    if not take_ctty:
        return
    try:
        sys.setsid()
    except OSError as e:
        if e.errno != errno.EPERM:  # EPERM: already a session leader, which is fine
            raise
    try:
        sys.setctty(0)
    except OSError as e:
        raise RuntimeFailure(f"ioctl(TIOCSCTTY): {oserror_text(e)}") from None
