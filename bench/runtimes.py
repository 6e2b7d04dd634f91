"""The runtimes under test: runc, crun (where it runs) and pyrunc.

Each gets its own --root under the bench's temporary directory.

crun 1.8 refuses a hybrid cgroup host ("cgroups in hybrid mode not supported").
Then its commands run in a private mount namespace where
/sys/fs/cgroup/unified is unmounted, so it sees a plain cgroup v1 layout.  The
bench enters that namespace itself with setns() just before spawning a crun
command and leaves it right after the command is waited for: crun gets no
wrapper process (no unshare/sh/nsenter exec in its timings), and the setns
calls fall outside the timed window.  The host's mount is never touched: the
namespace is made by `unshare --propagation private`, and only its copy of the
mount is removed.
"""
import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass

from bench.procs import CommandFailed, setns

UNIFIED = "/sys/fs/cgroup/unified"


@dataclass
class Runtime:
    name: str
    exe: str
    root: str
    mntns_fd: int = -1         # >= 0: run its commands in this mount namespace
    how: str = "host"          # how it was run, for the report

    def argv(self, *args):
        return [self.exe, "--root", self.root, *args]


class Namespaces:
    """Enter/leave a runtime's mount namespace around its commands."""

    def __init__(self):
        self.host_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)

    @contextlib.contextmanager
    def entered(self, rt):
        if rt.mntns_fd < 0:
            yield
            return
        cwd = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(rt.mntns_fd)    # inside the try: a Ctrl-C right after it still leaves
            yield
        finally:
            # setns into a mount namespace resets cwd to its root: restore both
            setns(self.host_fd)
            os.fchdir(cwd)
            os.close(cwd)

    def close(self):
        os.close(self.host_fd)


def _mounted(path, mountinfo="/proc/self/mountinfo"):
    with open(mountinfo) as f:
        return any(line.split()[4] == path for line in f)


def hybrid_host():
    return _mounted(UNIFIED)


def make_v1_mntns():
    """A mount namespace fd without /sys/fs/cgroup/unified (host untouched)."""
    # `unshare -m` without --fork execs sh in place, and sh execs cat: the pid
    # we know lives in the new namespace until we close its stdin.
    p = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"umount {UNIFIED} && echo ready && exec cat >/dev/null"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline()
        if line != b"ready\n":
            raise RuntimeError("could not make a mount namespace without "
                               f"{UNIFIED}: {p.stderr.read().decode().strip()}")
        fd = os.open(f"/proc/{p.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        p.stdin.close()
        p.wait()
        p.stdout.close()
        p.stderr.close()
    if not _mounted(UNIFIED):
        os.close(fd)
        raise RuntimeError(f"{UNIFIED} disappeared from the host: stopping")
    return fd


def find(name, override=None):
    exe = override or shutil.which(name)
    if exe and os.path.isfile(exe) and os.access(exe, os.X_OK):
        return os.path.abspath(exe)
    return None


def version(exe):
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return " ".join(line.strip() for line in out.splitlines()[:3] if line.strip())


def setup_crun(rt, probe, namespaces):
    """Make crun usable: on the host if it accepts it, else in a v1 mount
    namespace.  `probe(rt)` runs one container and raises CommandFailed.
    Returns (runtime or None, note)."""
    try:
        probe(rt)
        return rt, "crun ran on the host"
    except CommandFailed as e:
        first = str(e)
    if not hybrid_host():
        return None, f"crun skipped: {first}"
    try:
        rt.mntns_fd = make_v1_mntns()
    except (OSError, RuntimeError) as e:
        return None, f"crun skipped: {first}; {e}"
    rt.how = "private mount ns without cgroup2 (setns by the bench, no wrapper)"
    try:
        with namespaces.entered(rt):
            probe(rt)
    except CommandFailed as e:
        os.close(rt.mntns_fd)
        rt.mntns_fd, rt.how = -1, "host"
        return None, f"crun skipped: {first}; in a v1 mount namespace: {e}"
    return rt, ("crun refuses this hybrid cgroup host, so its commands run in a private "
                f"mount namespace with {UNIFIED} unmounted (a plain v1 layout); the bench "
                "setns()es into it around each crun command: no wrapper process, "
                "nothing to subtract")
