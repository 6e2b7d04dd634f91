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
