"""Processes seen from the host: signals by name, waiting for a pid to go, container members."""
import posix   # not os: see pyrunc/state.py
import _signal   # the C module: `signal` imports enum (~3 ms a call)
import time

from pyrunc.errors import UsageError


def parse_signal(text):
    """"9", "KILL", "SIGKILL", "sigkill" -> 9 (runc accepts the same forms)."""
    if text.isdigit():
        n = int(text)
        if 0 <= n < _signal.NSIG:   # 0: only checks the init exists, as with runc
            return n
        raise UsageError(f"unknown signal {text!r}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    # the names signal.Signals has: SIG* but not SIG_DFL, SIG_IGN, SIG_BLOCK, ...
    number = getattr(_signal, name, None) if not name.startswith("SIG_") else None
    if not isinstance(number, int):
        raise UsageError(f"unknown signal {text!r}")
    return number


def wait_gone(pid, timeout):
    """Wait until pid has exited (zombie counts as gone); True if it did in time."""
    try:
        fd = posix.pidfd_open(pid)
    except ProcessLookupError:
        return True
    import select   # only when there is a process to wait for (not `kill`)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        return bool(p.poll(timeout * 1000))
    finally:
        posix.close(fd)


def pid_ns_inode(pid):
    try:
        return posix.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def pids_in_pid_ns(init_pid):
    """Host pids of every process in init's pid namespace (for kill --all without cgroups)."""
    ino = pid_ns_inode(init_pid)
    if ino is None:
        return []
    out = []
    for name in posix.listdir("/proc"):
        if name.isdigit() and pid_ns_inode(int(name)) == ino:
            out.append(int(name))
    return out


def signal_all(pids, sig):
    for pid in pids:
        try:
            posix.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_all_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    for pid in pids:
        if not wait_gone(pid, max(0.0, deadline - time.monotonic())):
            return False
    return True
