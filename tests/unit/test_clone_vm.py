"""syscalls.clone_vm (pyrunc/clone_vm.c): a child in our memory, run while we
sleep, until it execs or exits.  Each case runs in a fresh interpreter: the
runtime's situation (one thread), not pytest's."""
import os
import subprocess
import sys

import _cffi_backend   # where the venv keeps it, for the child interpreters
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATHS = [REPO, os.path.dirname(_cffi_backend.__file__)]

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64",
                                reason="clone_vm is written for x86_64 (ENOSYS elsewhere)")

PRELUDE = f"""
import ctypes, posix, sys, time
sys.path[:0] = {PATHS!r}
from pyrunc import syscalls as S
def dumpable():
    return ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)   # PR_GET_DUMPABLE
"""


def _run(body):
    r = subprocess.run([sys.executable, "-I", "-S", "-c", PRELUDE + body],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "Fatal" not in r.stderr, r.stderr
    return r.stdout.split()


def test_the_child_runs_in_our_memory_and_we_wake_once_it_execs():
    out = _run("""
seen = []
def child():
    seen.append(posix.getpid())          # our list: the same memory
    S.prctl(S.C.PR_SET_DUMPABLE, 0)      # the shared mm's flag
    posix.execv("/bin/sh", ["sh", "-c", "exit 3"])
pid = S.clone_vm(0, -1, child)
print(seen == [pid], posix.waitpid(pid, 0)[1] >> 8, dumpable())
""")
    assert out == ["True", "3", "1"]   # ... and the flag is ours again, as it was


def test_a_child_that_exits_or_raises_ends_there():
    out = _run("""
def exits():
    posix._exit(7)
def raises():
    raise ValueError("no")
for child in (exits, raises):
    print(posix.waitpid(S.clone_vm(0, -1, child), 0)[1] >> 8)
print(sum(range(1000)))   # and we still run Python
""")
    assert out == ["7", "127", "499500"]


def test_a_child_killed_while_it_released_the_gil():
    # it blocks in a read (no GIL held); a helper forked beforehand kills it
    out = _run("""
r, w = posix.pipe(); r2, w2 = posix.pipe()
helper = posix.fork()
if helper == 0:
    pid = int(posix.read(r, 20)); time.sleep(0.1); posix.kill(pid, 9); posix._exit(0)
def child():
    posix.write(w, str(posix.getpid()).encode())
    posix.read(r2, 1)
pid = S.clone_vm(0, -1, child)
print(posix.waitpid(pid, 0)[1] & 0x7f)
posix.waitpid(helper, 0)
import threading   # the GIL works: a thread can take it and give it back
t = threading.Thread(target=lambda: print("thread"))
t.start(); t.join()
""")
    assert out == ["9", "thread"]


def test_not_with_other_threads():
    out = _run("""
import threading, errno
stop = threading.Event()
t = threading.Thread(target=stop.wait); t.start()
try:
    S.clone_vm(0, -1, lambda: posix._exit(0))
except OSError as e:
    print(e.errno == errno.EBUSY)
stop.set(); t.join()
""")
    assert out == ["True"]
