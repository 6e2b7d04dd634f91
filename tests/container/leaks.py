"""The leak checker behind the autouse `leak_check` fixture: what a container
test may not leave behind, found by comparing the host before and after.

Processes, mounts, cgroups, fds of the pytest process, and entries in the
test's private state root.  Reported first, then cleaned up.
"""
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

CGROUP_ROOT = "/sys/fs/cgroup"

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(s):  # mountinfo escapes space, tab, newline and backslash as \ooo
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), s)


def _mounts():
    with open("/proc/self/mountinfo") as f:
        return {(p[0], _unescape(p[4])) for p in (line.split() for line in f)}


def _procs():
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    out[int(pid)] = f.read().rsplit(")", 1)[1].split()[19]   # starttime
            except (OSError, IndexError):
                pass
    return out


def _read(path, binary=False):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data if binary else data.decode(errors="replace")
    except OSError:
        return b"" if binary else ""


def _ppid(pid):
    stat = _read(f"/proc/{pid}/stat")
    return int(stat.rsplit(")", 1)[1].split()[1]) if stat else 0


def _alive(pid):   # zombies count as gone: their parent reaps them
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cgroup_dirs():
    found = set()
    for top in os.listdir(CGROUP_ROOT) if os.path.isdir(CGROUP_ROOT) else ():
        for dirpath, dirnames, _ in os.walk(os.path.join(CGROUP_ROOT, top)):
            if dirpath.count("/") > 10:
                dirnames[:] = []
            found.update(os.path.join(dirpath, d) for d in dirnames)
    return found


def _fds():
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:   # the fd listdir itself used, closed by now
            pass
    return out


def _under(path, dirs):
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


@dataclass
class LeakWatch:
    """Snapshot the host before a test; afterwards find what the test left
    behind, report it, then clean it up.

    dirs: the test's temp dirs (mounts under them are leaks);
    state_root: must be empty afterwards except for empty per-runtime dirs;
    ids: container ids the test used (Runtime adds them);
    runtimes: state dir -> binary, for `delete --force` during cleanup.
    """
    dirs: list
    state_root: str
    ids: set = field(default_factory=set)
    runtimes: dict = field(default_factory=dict)
    grace: float = 2.0

    def start(self):
        self._mounts = _mounts()
        self._procs = _procs()
        self._cgroups = _cgroup_dirs()
        self._fds = _fds()
        self.found = {}
        return self

    def _our_process(self, pid):
        me = os.getpid()
        cmdline = _read(f"/proc/{pid}/cmdline", True).replace(b"\0", b" ").decode(errors="replace")
        if any(d in cmdline for d in self.dirs) or any(i in cmdline for i in self.ids):
            return cmdline
        if any(f"/{i}" in _read(f"/proc/{pid}/cgroup") for i in self.ids):
            return cmdline
        environ = _read(f"/proc/{pid}/environ")   # runc init: _LIBCONTAINER_STATEDIR=...
        if any(d in environ for d in self.dirs):
            return cmdline
        ppid = pid
        for _ in range(64):   # a descendant of this pytest
            ppid = _ppid(ppid)
            if ppid == me:
                return cmdline
            if ppid <= 1:
                break
        return None

    def _new_processes(self):
        out = {}
        for pid, start in _procs().items():
            if self._procs.get(pid) == start or pid == os.getpid():
                continue
            if not _alive(pid):
                continue
            cmd = self._our_process(pid)
            if cmd is not None:
                out[pid] = cmd
        return out

    def _state_leftovers(self):
        out = []
        for dirpath, dirnames, filenames in os.walk(self.state_root):
            out += [os.path.join(dirpath, f) for f in filenames]
            # <state_root>/<runtime>/ may stay (runtimes keep their root dir);
            # an empty <runtime>/<id>/ below it is a half-deleted container
            depth = os.path.relpath(dirpath, self.state_root).count("/")
            if depth >= 1 and not dirnames and not filenames:
                out.append(dirpath + "/")
        return sorted(out)

    def _ids_from_state(self):
        # <state_root>/<runtime>/<id>/: ids of containers made without a watch
        for sub in os.listdir(self.state_root) if os.path.isdir(self.state_root) else ():
            path = os.path.join(self.state_root, sub)
            if os.path.isdir(path):
                self.ids.update(e for e in os.listdir(path) if len(e) >= 4)

    def check(self):
        """Return a list of human-readable leak descriptions (empty: clean)."""
        self._ids_from_state()
        deadline = time.monotonic() + self.grace
        while True:   # processes of a just-killed container take a moment to go
            procs = self._new_processes()
            if not procs or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        mounts = sorted(m for m in _mounts() - self._mounts if _under(m[1], self.dirs))
        cgroups = sorted(c for c in _cgroup_dirs() - self._cgroups
                         if any(i in os.path.basename(c) for i in self.ids))
        fds = {fd: t for fd, t in _fds().items() if fd not in self._fds}
        state = self._state_leftovers()
        self.found = dict(processes=procs, mounts=mounts, cgroups=cgroups, fds=fds, state=state)
        report = [f"process {pid} still running: {cmd!r}" for pid, cmd in procs.items()]
        report += [f"mount left at {mp}" for _, mp in mounts]
        report += [f"cgroup left: {c}" for c in cgroups]
        report += [f"fd {fd} left open in pytest -> {t}" for fd, t in fds.items()]
        report += [f"state root not empty: {p}" for p in state]
        return report

    def cleanup(self):
        """Undo what check() found.  Best effort: every step runs."""
        f = self.found
        from tests.container.helpers import RUNC, pyrunc_path
        roots = dict(self.runtimes)
        for sub in os.listdir(self.state_root) if os.path.isdir(self.state_root) else ():
            path = os.path.join(self.state_root, sub)   # unregistered: guess from the name
            roots.setdefault(path, pyrunc_path() if sub.startswith("pyrunc") else RUNC)
        for root, binary in roots.items():
            for cid in os.listdir(root) if os.path.isdir(root) else ():
                subprocess.run([binary, "--root", root, "delete", "--force", cid],
                               capture_output=True, timeout=30)
        for pid in f.get("processes", {}):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _, mp in sorted(f.get("mounts", []), key=lambda m: -len(m[1])):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        deadline = time.monotonic() + 2   # a cgroup can go only once its tasks have
        while any(_alive(pid) for pid in f.get("processes", {})) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        for c in sorted(f.get("cgroups", []), key=len, reverse=True):
            try:
                os.rmdir(c)
            except OSError:
                pass
        for fd in f.get("fds", {}):
            try:
                os.close(fd)
            except OSError:
                pass
        for entry in os.listdir(self.state_root) if os.path.isdir(self.state_root) else ():
            shutil.rmtree(os.path.join(self.state_root, entry), ignore_errors=True)
