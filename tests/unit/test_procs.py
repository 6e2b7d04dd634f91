import os
import subprocess

import pytest

from pyrunc.errors import UsageError
from pyrunc.procs import parse_signal, wait_gone


@pytest.mark.parametrize("text, num", [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("sigterm", 15),
                                       ("term", 15), ("USR1", 10), ("WINCH", 28), ("0", 0)])
def test_parse_signal(text, num):
    assert parse_signal(text) == num


@pytest.mark.parametrize("text", ["65", "NOPE", "SIG", ""])
def test_parse_signal_rejects(text):
    with pytest.raises(UsageError):
        parse_signal(text)


def test_wait_gone():
    p = subprocess.Popen(["sleep", "30"])
    assert wait_gone(p.pid, 0.05) is False
    p.kill()
    assert wait_gone(p.pid, 5) is True   # zombie counts as gone
    p.wait()
    assert wait_gone(p.pid, 0.01) is True
