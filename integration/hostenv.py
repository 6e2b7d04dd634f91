"""What the real clients leave on the host, found and removed by pid and path.

Everything the integration session starts lives under one session directory
and a few cgroup trees with names of our own; these helpers find processes,
mounts and cgroups that belong to those, and remove them without touching
anything else on the machine (never by process name, always by pid).
"""
import os
import re
import signal
import subprocess
import time

CGROUP_ROOT = "/sys/fs/cgroup"
_OCTAL = re.compile(r"\\([0-7]{3})")


def wait_for(pred, timeout=10.0, interval=0.05):
    """pred()'s first truthy value, or its last value once `timeout` passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def alive(pid):
    """True for a live process; a zombie counts as gone (its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def processes_mentioning(*needles):
    """[(pid, cmdline)] of live processes whose command line contains a needle."""
    out = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        line = cmdline(name)
        if line and any(n in line for n in needles) and alive(int(name)):
            out.append((int(name), line))
    return out


def stop_pid(pid, timeout=15.0, sig=signal.SIGTERM):
    """Signal one process, wait for it, SIGKILL it if it outlives `timeout`.
    True when it is gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    if wait_for(lambda: not alive(pid), timeout):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return bool(wait_for(lambda: not alive(pid), 5.0))


def kill_all(procs):
    for pid, _ in procs:
        stop_pid(pid, timeout=2.0, sig=signal.SIGKILL)


def mounts_under(prefix):
    """Mount points at or below `prefix`, deepest (latest) first."""
    prefix = prefix.rstrip("/")
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                out.append(point)
    return out[::-1]


def unmount_under(prefix):
    """Detach every mount below prefix; returns the ones that stayed."""
    for point in mounts_under(prefix):
        subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return mounts_under(prefix)


def cgroup_trees(name):
    """The directories named `name` at the top of every cgroup hierarchy."""
    out = []
    try:
        hierarchies = sorted(os.listdir(CGROUP_ROOT))
    except OSError:
        return out
    for h in hierarchies:
        path = os.path.join(CGROUP_ROOT, h, name)
        if os.path.isdir(path):
            out.append(path)
    return out


def cgroup_leaves(name, ignore=()):
    """Directories below the `name` trees (the containers' cgroups), minus
    the basenames in `ignore` (e.g. podman's shared "conmon" cgroup)."""
    out = []
    for top in cgroup_trees(name):
        for dirpath, dirnames, _ in os.walk(top):
            out += [os.path.join(dirpath, d) for d in dirnames if d not in ignore]
    return out


def remove_cgroup_tree(name):
    """rmdir the `name` trees bottom-up; returns the directories that stayed
    (they still hold processes)."""
    stayed = []
    for top in cgroup_trees(name):
        for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                stayed.append(dirpath)
    return stayed


class HostPaths:
    """Paths outside the session dir a client creates on the host (dockerd's
    /etc/docker/key.json, /run/docker/plugins, containerd's /run/containerd/s):
    remembered before the session, removed after it if they were not there."""

    def __init__(self, paths):
        self.absent = [p for p in paths if not os.path.lexists(p)]

    def restore(self):
        left = []
        # deepest first: a created file goes before the directory that holds it
        for p in sorted(self.absent, key=lambda p: -p.count("/")):
            try:
                if os.path.isdir(p) and not os.path.islink(p):
                    os.rmdir(p)
                elif os.path.lexists(p):
                    os.unlink(p)
            except OSError:
                left.append(p)
        return left
