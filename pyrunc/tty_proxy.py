"""A foreground `run`/`exec` with a terminal on the caller's own tty.

The container's pty master arrives over a socketpair, like it would over a
--console-socket; we put the caller's terminal in raw mode and copy bytes
both ways until the container's process exits, passing window-size changes
on.  The caller's terminal is restored whatever happens.
"""
import array
import errno
import fcntl
import os
import select
import signal
import socket
import termios

from pyrunc.errors import RuntimeFailure


def receive_master(sock):
    """The pty master fd sent with SCM_RIGHTS (runc's console-socket protocol)."""
    fds = array.array("i")
    msg, anc, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    if not fds:
        raise RuntimeFailure("console: no pty master received")
    return fds[0]


def _copy_winsize(src_fd, dst_fd):
    try:
        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def proxy(master, pid, wait_status):
    """Copy stdin->master and master->stdout until `pid` exits; returns its exit code.

    wait_status(pid, block) -> exit code or None (not yet exited).
    """
    import gc
    gc.enable()   # the launcher turns it off; this may run for days
    stdin, stdout = 0, 1
    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        raw = termios.tcgetattr(stdin)
        raw[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP |
                    termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
        raw[1] &= ~termios.OPOST
        raw[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG |
                    termios.IEXTEN)
        raw[6][termios.VMIN], raw[6][termios.VTIME] = 1, 0
        termios.tcsetattr(stdin, termios.TCSANOW, raw)
        _copy_winsize(stdin, master)
        signal.signal(signal.SIGWINCH, lambda *_: _copy_winsize(stdin, master))
    try:
        return _pump(master, pid, wait_status, stdin, stdout)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSAFLUSH, saved)
        os.close(master)


def _pump(master, pid, wait_status, stdin, stdout):
    readers = [master, stdin]
    code = None
    while True:
        try:
            ready, _, _ = select.select(readers, [], [], 0.1)
        except InterruptedError:
            continue
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError as e:
                if e.errno != errno.EIO:   # EIO: every slave fd is closed
                    raise
                data = b""
            if not data:
                break
            os.write(stdout, data)
        if stdin in ready:
            data = os.read(stdin, 65536)
            if data:
                os.write(master, data)
            else:
                readers.remove(stdin)
        if code is None:
            code = wait_status(pid, False)
            if code is not None and master not in ready:
                break
    return code if code is not None else wait_status(pid, True)
