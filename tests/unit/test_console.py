"""The console: a real pty sent over a real socketpair, and the handler's call
order with the recording double (the mount needs root)."""
import errno
import fcntl
import os
import socket
import stat
import struct
import termios
from types import SimpleNamespace

import pytest

from pyrunc import syscalls
from pyrunc.errors import RuntimeFailure
from pyrunc.executor import base, console
from pyrunc.plan.steps import SetupConsole
from tests.doubles import RecordingSys

C = syscalls.C


@pytest.fixture
def ptmx():
    try:
        fd = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        pytest.skip(f"no /dev/ptmx here: {e}")
    yield fd
    os.close(fd)


def test_master_reaches_the_client_and_talks_to_the_slave(ptmx):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        slave, name = console.make_pty(syscalls, ptmx, ours.fileno(), (33, 111))
        try:
            payload, fds, _, _ = socket.recv_fds(theirs, 4096, 4)
            assert payload == b"/dev/ptmx"                  # what runc sends
            assert len(fds) == 1
            master = fds[0]
            try:
                assert os.ttyname(slave) == name and name.startswith("/dev/pts/")
                # the received fd is the master of *this* slave
                os.write(slave, b"hello\n")
                assert os.read(master, 100).startswith(b"hello")
                os.write(master, b"typed\n")
                assert os.read(slave, 100) == b"typed\n"
                size = fcntl.ioctl(master, termios.TIOCGWINSZ, b"\0" * 8)
                assert struct.unpack("HHHH", size)[:2] == (33, 111)
                # opened close-on-exec, and without becoming our controlling tty
                assert fcntl.fcntl(slave, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
                with pytest.raises(OSError) as info:
                    os.tcgetpgrp(slave)
                assert info.value.errno == errno.ENOTTY
            finally:
                os.close(master)
        finally:
            os.close(slave)


def test_no_size_leaves_the_default(ptmx):
    slave, _ = console.open_slave(syscalls, ptmx, None)
    try:
        size = fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8)
        assert struct.unpack("HHHH", size)[:2] == (0, 0)
    finally:
        os.close(slave)


def test_send_failure_closes_the_slave(ptmx):
    a, b = socket.socketpair()
    b.close()
    with a:
        before = set(os.listdir("/proc/self/fd"))
        with pytest.raises(OSError):
            console.make_pty(syscalls, ptmx, a.fileno(), None)
        assert set(os.listdir("/proc/self/fd")) == before


# --- the handler, recorded --------------------------------------------------------

class ConsoleSys(RecordingSys):
    def __init__(self, ptmx_rdev=os.makedev(5, 2), console_mode=stat.S_IFREG | 0o666):
        super().__init__()
        self.stats = [SimpleNamespace(st_mode=stat.S_IFCHR | 0o666, st_rdev=ptmx_rdev),
                      SimpleNamespace(st_mode=console_mode, st_rdev=0)]

    def fstat(self, fd):
        self.calls.append(("fstat", (fd,)))
        return self.stats.pop(0)

    def pty_number(self, fd):
        self.calls.append(("pty_number", (fd,)))
        return 4

    def pty_peer(self, fd, flags):
        self.calls.append(("pty_peer", (fd, flags)))
        return 50


def ctx_for(sys, sock=9):
    return base.Context(sys=sys, config=None, root_fd=7, console_socket_fd=sock)


def test_handler_order():
    sys = ConsoleSys()
    base._HANDLERS[SetupConsole](SetupConsole((24, 80)), ctx_for(sys))
    names = sys.names()
    master = sys.calls[0]
    assert master[0] == "openat2" and master[1][:2] == (7, "dev/pts/ptmx")
    assert master[1][2] & os.O_ACCMODE == os.O_RDWR and master[1][2] & os.O_NOCTTY
    assert master[1][4] & C.RESOLVE_IN_ROOT
    master_fd = 101
    # pty made, console bound, master sent, master closed, then stdio
    order = ["pty_unlock", "pty_number", "pty_peer", "set_winsize", "mount", "send_fds"]
    assert [n for n in names if n in order] == order
    mount = sys.of("mount")[0][1]
    assert mount[0] == "/proc/self/fd/50" and mount[1].startswith("/proc/self/fd/")
    assert mount[3] == C.MS_BIND
    assert sys.of("send_fds") == [("send_fds", (9, b"/dev/ptmx", [master_fd]))]
    assert ("close", (master_fd,)) in sys.calls
    assert names.index("send_fds") < sys.calls.index(("close", (master_fd,)))
    tail = sys.calls[-6:]
    assert tail == [("dup2", (50, 0, True)), ("dup2", (50, 1, True)), ("dup2", (50, 2, True)),
                    ("close", (50,)), ("setsid", ()), ("setctty", (0,))]
    assert sys.of("set_winsize") == [("set_winsize", (master_fd, 24, 80))]


def test_console_target_opened_without_following_symlinks():
    sys = ConsoleSys()
    base._HANDLERS[SetupConsole](SetupConsole(None), ctx_for(sys))
    opens = [c for c in sys.of("openat2") if c[1][1] == "console"]
    assert opens and all(c[1][2] & os.O_NOFOLLOW and c[1][4] & C.RESOLVE_NO_SYMLINKS
                         for c in opens)
    assert "set_winsize" not in sys.names()


def test_symlinked_dev_console_is_refused():
    sys = ConsoleSys(console_mode=stat.S_IFLNK | 0o777)
    with pytest.raises(RuntimeFailure, match="refusing to mount the console"):
        base._HANDLERS[SetupConsole](SetupConsole(None), ctx_for(sys))
    assert "mount" not in sys.names() and "send_fds" not in sys.names()
    assert ("close", (50,)) in sys.calls and ("close", (101,)) in sys.calls


def test_not_a_ptmx_is_refused():
    sys = ConsoleSys(ptmx_rdev=os.makedev(1, 3))
    with pytest.raises(RuntimeFailure, match="not the ptmx device"):
        base._HANDLERS[SetupConsole](SetupConsole(None), ctx_for(sys))
    assert "send_fds" not in sys.names() and ("close", (101,)) in sys.calls


def test_missing_devpts_is_explained():
    sys = ConsoleSys()
    sys.fail["openat2"] = errno.ENOENT
    with pytest.raises(RuntimeFailure, match="no such file or directory.*devpts"):
        base._HANDLERS[SetupConsole](SetupConsole(None), ctx_for(sys))


def test_no_console_socket():
    with pytest.raises(RuntimeFailure, match="console-socket"):
        base._HANDLERS[SetupConsole](SetupConsole(None), ctx_for(ConsoleSys(), sock=-1))


def test_exec_process_uses_its_root_and_leaves_dev_console_alone():
    sys = ConsoleSys()
    ctx = base.Context(sys=sys, config=None, console_socket_fd=9)   # no root_fd
    base._HANDLERS[SetupConsole](SetupConsole(None, bind_console=False), ctx)
    assert sys.calls[0] == ("open", ("/", os.O_PATH | os.O_DIRECTORY))
    root = 101
    assert sys.calls[1][0] == "openat2" and sys.calls[1][1][:2] == (root, "dev/pts/ptmx")
    assert "mount" not in sys.names()
    assert ("close", (root,)) in sys.calls and sys.names()[-1] == "setctty"
    assert sys.of("send_fds") == [("send_fds", (9, b"/dev/ptmx", [102]))]
