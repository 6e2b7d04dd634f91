"""process.terminal with --console-socket, as containerd's shim and conmon use
it: the runtime sends the pty master over a unix socket (SCM_RIGHTS); the
slave is the process's stdio, its controlling terminal and /dev/console.

The receiving end is written here, in a few lines, like a client's."""
import array
import errno
import os
import select
import socket
import subprocess
import threading
import time

import pytest

from tests.container.realkit import error_line, wait_status

REPORT = ('tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo stdio-tty; '
          'echo "console $(stat -c %t:%T /dev/console) $(stat -c %t:%T $(tty))"; '
          'stty size; echo "sid $(cut -d" " -f6 /proc/$$/stat) pid $$"')


class ConsoleReceiver:
    """A unix socket server that accepts one connection and takes one fd."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.master = None
        self.payload = None
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(20)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            fds = array.array("i")
            msg, anc, _flags, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            self.payload = msg
            self.master = fds[0] if fds else None

    def wait_master(self, timeout=10):
        self.thread.join(timeout)
        return self.master

    def read_all(self, timeout=10):
        """Everything the container writes, until its side of the pty closes."""
        out, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError as e:
                if e.errno == errno.EIO:   # no slave left open: the container exited
                    break
                raise
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace").replace("\r\n", "\n")

    def close(self):
        self.sock.close()
        if self.master is not None:
            os.close(self.master)
            self.master = None


@pytest.fixture
def receiver(tmp_path):
    r = ConsoleReceiver(tmp_path / "console.sock")
    yield r
    r.close()


@pytest.fixture(params=["pyrunc", "runc"])
def any_rt(request, make_runtime):
    binary = request.getfixturevalue(request.param)
    return make_runtime(binary, name=request.param)


def _tty_bundle(bundle_factory, args):
    b = bundle_factory(args=args)
    b.config["process"]["terminal"] = True
    b.config["process"]["consoleSize"] = {"height": 33, "width": 111}
    b.write_config()
    return b


def test_console_socket(any_rt, bundle_factory, container_id, receiver):
    rt = any_rt
    bundle = _tty_bundle(bundle_factory, ["sh", "-c", REPORT])
    cid = container_id()
    r = rt.create(cid, bundle, "--console-socket", receiver.path)
    assert r.returncode == 0, r.stderr
    master = receiver.wait_master()
    assert master is not None, "no fd arrived on the console socket"
    assert os.isatty(master)
    assert rt.start(cid).returncode == 0
    out = receiver.read_all()
    wait_status(rt, cid, "stopped")
    assert rt.delete(cid).returncode == 0
    lines = out.splitlines()
    assert lines[0].startswith("/dev/pts/"), out
    assert "stdio-tty" in lines, out
    console = next(ln for ln in lines if ln.startswith("console "))
    _, dev_console, dev_tty = console.split()
    assert dev_console == dev_tty and dev_console.startswith("88:"), \
        f"/dev/console must be the pty slave: {console}"
    assert "33 111" in lines, out
    sid = next(ln for ln in lines if ln.startswith("sid ")).split()
    assert sid[1] == sid[3] == "1", f"the process leads its session: {sid}"


def test_console_socket_with_run_detach(any_rt, bundle_factory, container_id, receiver):
    rt = any_rt
    bundle = _tty_bundle(bundle_factory, ["sh", "-c", "echo hi-from-tty; exit 5"])
    cid = container_id()
    r = rt.run(cid, bundle, "--detach", "--console-socket", receiver.path)
    assert r.returncode == 0, r.stderr
    assert receiver.wait_master() is not None
    assert "hi-from-tty" in receiver.read_all()
    wait_status(rt, cid, "stopped")
    assert rt.delete(cid).returncode == 0


def test_run_foreground_terminal_makes_its_own_pty(any_rt, bundle_factory, container_id):
    """`runc run` on a terminal, with process.terminal and no --console-socket
    (what `runc spec` gives), makes a pty itself and copies the I/O."""
    rt = any_rt
    bundle = _tty_bundle(bundle_factory, ["sh", "-c", "tty; echo hi-from-tty; exit 5"])
    cid = container_id()
    master, slave = os.openpty()

    def controlling_tty():
        import fcntl
        import termios
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    try:
        p = subprocess.Popen(rt.argv("run", "--bundle", bundle, cid), stdin=slave,
                             stdout=slave, stderr=slave, preexec_fn=controlling_tty)
        os.close(slave)
        slave = -1
        out = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        code = p.wait(10)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    text = out.decode(errors="replace")
    assert code == 5, text
    assert "hi-from-tty" in text and "/dev/pts/" in text, text
    assert rt.state(cid).returncode == 1


def test_console_socket_unreachable(make_runtime, pyrunc, bundle_factory, container_id,
                                    tmp_path):
    rt = make_runtime(pyrunc, name="pyrunc")
    bundle = _tty_bundle(bundle_factory, ["true"])
    cid = container_id()
    r = rt.create(cid, bundle, "--console-socket", tmp_path / "nobody-listens.sock")
    assert r.returncode == 1
    assert "no such file or directory" in error_line(r.stderr)
    assert rt.state(cid).returncode == 1


def test_console_socket_without_terminal(make_runtime, pyrunc, bundle_factory, container_id,
                                         receiver):
    rt = make_runtime(pyrunc, name="pyrunc")
    bundle = bundle_factory(args=["true"])
    cid = container_id()
    r = rt.create(cid, bundle, "--console-socket", receiver.path)
    assert r.returncode == 1 and "console socket" in error_line(r.stderr)
    assert rt.state(cid).returncode == 1


def test_console_then_failure_leaves_nothing(make_runtime, pyrunc, bundle_factory,
                                             container_id, receiver):
    rt = make_runtime(pyrunc, name="pyrunc")
    bundle = _tty_bundle(bundle_factory, ["nosuchcmd"])
    cid = container_id()
    r = rt.create(cid, bundle, "--console-socket", receiver.path)
    assert r.returncode == 1
    assert "executable file not found in $PATH" in error_line(r.stderr)
    assert rt.state(cid).returncode == 1
    if receiver.wait_master() is not None:
        # the pty's other side is gone with the init: reading ends at once
        assert receiver.read_all(timeout=3) == ""
