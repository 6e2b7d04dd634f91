"""executor/waiter.load: the sealed copy of pyrunc-init, or a said fallback."""
import errno

from pyrunc.executor import waiter
from tests.doubles import RecordingSys


def test_the_waiter_is_copied_into_an_executable_sealed_memfd(tmp_path):
    prog = tmp_path / "w"
    prog.write_bytes(b"\x7fELF-ish")
    sys, warnings = RecordingSys(), []
    fd = waiter.load(sys, warnings, str(prog))
    assert fd is not None and warnings == []
    assert sys.calls == [("sealed_memfd", ("pyrunc-init", b"\x7fELF-ish"), {"executable": True})]


def test_no_waiter_means_the_python_init_waits_and_says_so(tmp_path):
    sys, warnings = RecordingSys(), []
    assert waiter.load(sys, warnings, str(tmp_path / "missing")) is None
    (level, text), = warnings
    assert level == "warning" and "missing: no such file or directory" in text


def test_a_host_refusing_executable_memfds_falls_back(tmp_path):
    prog = tmp_path / "w"
    prog.write_bytes(b"x")
    sys, warnings = RecordingSys(), []
    sys.fail["sealed_memfd"] = errno.EINVAL
    assert waiter.load(sys, warnings, str(prog)) is None
    assert "invalid argument" in warnings[0][1]


class _Sync:
    def __init__(self):
        self.sent = []

    def fileno(self):
        return 5

    def send(self, kind, **fields):
        self.sent.append((kind, fields))


def _ctx(sys, waiter_fd):
    from pyrunc.executor.base import Context
    ctx = Context(sys=sys, config=None)
    ctx.exec_path = "/bin/sh"
    ctx.extra.update(sync=_Sync(), waiter_fd=waiter_fd)
    return ctx


def test_exec_spawn_hands_the_sync_socket_and_program_to_pyrunc_init():
    from pyrunc.plan.steps import ExecSpawn
    sys = RecordingSys()
    waiter.exec_spawn(ExecSpawn(("sh", "-c", "x"), ("A=1",), True), _ctx(sys, 77))
    (name, blob), = [c[1] for c in sys.of("sealed_memfd")]
    assert blob == b"/bin/sh\0sh\0-c\0x\0"
    program = sys._next_fd
    assert [c[1] for c in sys.of("set_inheritable")] == [(5, True), (program, True)]
    (fd, argv, env), = [c[1] for c in sys.of("fexecve")]
    assert (fd, argv) == (77, ["pyrunc-init", "spawn", "5", str(program), "1"])
    assert env == {"A": "1", "HOME": "/"}


def test_without_pyrunc_init_exec_forks_in_python():
    from pyrunc.plan.steps import ExecSpawn
    sys = RecordingSys()        # fork() returns None here: we are the child
    waiter.exec_spawn(ExecSpawn(("sh",), (), True), _ctx(sys, None))
    assert sys.names() == ["fork", "setsid", "setctty", "execve"]
    assert sys.of("execve")[0][1][:2] == ("/bin/sh", ["sh"])
