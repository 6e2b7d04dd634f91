"""Starting, timing and reaping the runtime commands.

Every runtime is started the same way (posix_spawn, its own process group so a
Ctrl-C reaches only the bench, which then cleans up) and timed the same way
(perf_counter_ns from just before the spawn to just after wait4 returns, whose
rusage also gives the command's peak RSS).

The bench is a child subreaper, as containerd's shim is: a container's init
outlives the `create` that made it and is reparented to us, so we reap it.
"""
import ctypes
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNS = 0x00020000

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def become_subreaper():
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def setns(fd, nstype=CLONE_NEWNS):
    # os.setns only exists from Python 3.12; the bench runs on Debian's 3.11
    _check(_libc.setns(fd, nstype), "setns")


class CommandFailed(Exception):
    """A runtime command exited non-zero (or was killed)."""

    def __init__(self, argv, code, stderr):
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        super().__init__(f"`{' '.join(argv)}` exited {code}: {tail or '(no stderr)'}")


@dataclass(frozen=True)
class Result:
    ns: int            # wall time of the command, nanoseconds
    maxrss_kb: int     # peak RSS of the command (and the children it reaped), KiB


def _exit_code(status):
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


class Spawner:
    """posix_spawn + wait4, with stdin/stdout on /dev/null and stderr in a file
    per slot (read back only when a command fails)."""

    def __init__(self, errdir):
        self.errdir = errdir
        self.outstanding = set()   # spawned and not yet waited for

    def _errpath(self, slot):
        return os.path.join(self.errdir, f"stderr.{slot}")

    def spawn(self, argv, slot=0):
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, self._errpath(slot),
             os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        ]
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setpgroup=0)
        self.outstanding.add(pid)
        return pid

    def wait(self, pid, argv, slot=0):
        """Wait for a spawned command; returns its rusage, raises CommandFailed."""
        _, status, rusage = os.wait4(pid, 0)
        self.outstanding.discard(pid)
        code = _exit_code(status)
        if code != 0:
            raise CommandFailed(argv, code, self.stderr(slot))
        return rusage

    def stderr(self, slot=0):
        try:
            with open(self._errpath(slot), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def run(self, argv, slot=0):
        """Run one command to completion; its Result."""
        t0 = time.perf_counter_ns()
        pid = self.spawn(argv, slot)
        rusage = self.wait(pid, argv, slot)
        elapsed = time.perf_counter_ns() - t0
        reap_strays(self)
        return Result(elapsed, rusage.ru_maxrss)

    def finish_outstanding(self):
        """Let commands still running (e.g. at Ctrl-C) finish; ignore their result."""
        for pid in list(self.outstanding):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self.outstanding.discard(pid)


def build_rsswrap(dest_dir):
    """Compile bench/rsswrap.c into dest_dir; its path, or None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rsswrap.c")
    exe = os.path.join(dest_dir, "rsswrap")
    done = subprocess.run([cc, "-O2", "-o", exe, src], capture_output=True, text=True)
    return exe if done.returncode == 0 else None


def read_rss_file(path):
    with open(path) as f:
        return int(f.read().strip())


def reap_strays(spawner):
    """Reap orphans reparented to us (exited container inits, intermediates).

    Never while a spawned command is outstanding: waitpid(-1) could take its
    status from the wait4 that times it.
    """
    if not spawner.outstanding:
        reap_all()


def reap_all():
    """Reap every child that has exited, without waiting for the others."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def read_pid_file(path, timeout=5.0):
    # written before `create` exits, but be lenient with runtimes that race it
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: no pid written")
        time.sleep(0.001)


def wait_exit(pidfd, timeout=30.0):
    """Block until the process behind pidfd has exited (reaped or not)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    if not poller.poll(int(timeout * 1000)):
        raise TimeoutError("container init did not exit")


def children_of(pid):
    """Pids whose parent is pid (scans /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return out
