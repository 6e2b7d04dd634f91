"""Tools for the fuzz, fault and load tests of real containers: checking what
one pyrunc command printed, checking the host after each example (not only
after the whole test), and killing pyrunc at a chosen syscall with strace.

Like helpers.py this talks to the pyrunc binary only; nothing imports
pyrunc's runtime code.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from tests.container.leaks import LeakWatch
from tests.container.realkit import RFC3339

STRACE = shutil.which("strace")


# --------------------------------------------------------------------- one command's output

class LogTail:
    """The lines a --log-format json file gained since the last read; each must parse."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def new_entries(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        out = []
        for line in data.decode().splitlines():
            entry = json.loads(line)      # a line that does not parse fails the test here
            assert set(entry) >= {"level", "msg", "time"}, entry
            assert RFC3339.match(entry["time"]), entry
            out.append(entry)
        return out


def check_result(r, log=None, what="pyrunc", ok_codes=(0,)):
    """No traceback; on failure exactly one `pyrunc: ...` line on stderr, the
    same message as the last error in the JSON log.  Returns the message or None."""
    assert "Traceback" not in r.stderr, f"{what}: traceback:\n{r.stderr}"
    assert r.returncode >= 0, f"{what}: died of signal {-r.returncode}: {r.stderr}"
    entries = log.new_entries() if log is not None else []
    if r.returncode in ok_codes:
        assert not [e for e in entries if e["level"] == "error"], (what, entries)
        return None
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("pyrunc: "), \
        f"{what}: exit {r.returncode}, want one 'pyrunc: ' line on stderr, got {lines!r}"
    msg = lines[0][len("pyrunc: "):]
    if log is not None:
        errors = [e for e in entries if e["level"] == "error"]
        assert errors and errors[-1]["msg"] == msg, (what, msg, entries)
    return msg


# --------------------------------------------------------------------- the host, per example

def cgroup_dirs_of(cid, root="/sys/fs/cgroup"):
    """Every cgroup directory whose name contains the id (any hierarchy, any depth)."""
    found = []
    for top in os.listdir(root) if os.path.isdir(root) else ():
        for dirpath, dirnames, _ in os.walk(os.path.join(root, top)):
            found += [os.path.join(dirpath, d) for d in dirnames if cid in d]
    return found


def host_leaks(watch, cid=None, rt_root=None):
    """watch.check() plus the checks that name one container: its state dir and
    its cgroups.  Cleans up what it found so the next example starts clean."""
    report = watch.check()
    if cid is not None:
        if rt_root is not None and os.path.lexists(os.path.join(rt_root, cid)):
            report.append(f"state dir left: {os.path.join(rt_root, cid)}")
        report += [f"cgroup left: {d}" for d in cgroup_dirs_of(cid) if f"cgroup left: {d}" not in report]
    if report:
        watch.cleanup()
        for d in sorted(cgroup_dirs_of(cid) if cid else [], key=len, reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass
    return report


def new_watch(dirs, state_root, *ids, grace=3.0):
    return LeakWatch(dirs=[str(d) for d in dirs], state_root=str(state_root), ids=set(ids),
                     grace=grace).start()


def processes_naming(*needles):
    """Live (non-zombie) processes whose command line, environment or cgroup
    names one of `needles`: the init of a container, or pyrunc working on it."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/cgroup") as f:
                cg = f.read()
        except OSError:
            continue
        if any(n in cmd or f"/{n}" in cg for n in needles):
            out[int(name)] = cmd
    return out


def wait_until(pred, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------- killing at a syscall

@dataclass(frozen=True)
class KillPoint:
    """The n-th call (1-based, counted per syscall in the traced process, the
    way strace's inject=...:when=n counts) of `syscall`; `what` describes it."""
    syscall: str
    nth: int
    what: str

    def __str__(self):
        return f"{self.syscall}#{self.nth} {self.what}"


# Calls that change the host or talk to the container: killing pyrunc just
# before each is killing it "between steps".  File reads and imports between
# them add nothing: their effect on the host is the same as the kill at the
# next call in this list.
SIDE_EFFECTS = ("mkdir", "mkdirat", "mknod", "mknodat", "rename", "renameat", "renameat2",
                "unlink", "unlinkat", "rmdir", "write", "pwrite64", "sendto", "sendmsg",
                "recvfrom", "recvmsg", "clone", "clone3", "fork", "vfork", "wait4", "kill",
                "tgkill", "flock", "socketpair", "connect", "execve", "fsync")
_LINE = re.compile(r'^(?:\d+ +)?([a-z0-9_]+)\((.*)$')
_FD_RESULT = re.compile(r"\) += (\d+)")
_PIDS = re.compile(r"\d{3,}")


def _first_arg(args):
    m = re.match(r'(?:AT_FDCWD, |\d+, )?("(?:[^"\\]|\\.)*"|[^,)]*)', args)
    return m.group(1) if m else ""


def kill_points(trace_path, start_marker):
    """From `strace -o FILE` of one full command, the KillPoints from the first
    line containing `start_marker` on; a run of calls doing the same thing to
    the same file (ten writes to devices.allow) counts once."""
    counts, fds, points, last = {}, {}, [], None
    started = False
    with open(trace_path) as f:
        for line in f:
            m = _LINE.match(line)
            if not m:
                continue
            name, args = m.groups()
            if "= ? ERESTART" in line:
                # A blocking call a signal (SIGCHLD) interrupted under ptrace: the
                # kernel restarts it and strace counts it twice, but only when the
                # signal happens to come during the call.  Counting it once keeps
                # the numbering of the calls that follow the same in every run; a
                # run that is interrupted itself then dies one call early, at the
                # restarted call, which is the same step.
                continue
            counts[name] = counts.get(name, 0) + 1
            if name in ("openat", "open"):
                r = _FD_RESULT.search(line)
                if r:
                    fds[r.group(1)] = _first_arg(args)
            started = started or start_marker in line
            if not started or name not in SIDE_EFFECTS:
                continue
            if name in ("write", "pwrite64"):
                fd = args.split(",", 1)[0]
                target = f"{fds.get(fd, 'fd ' + fd)} <- {_first_arg(args.split(', ', 1)[-1])}"
            else:
                target = _first_arg(args)
            key = (name, _PIDS.sub("N", target.split(" <- ")[0]))
            if key == last:
                continue   # the same again (ten rules into devices.allow): one step
            last = key
            points.append(KillPoint(name, counts[name], target[:100]))
    return points


def record_trace(argv, trace_path, err_path, env=None):
    """Run argv under strace (this process only, not its children), the full
    trace to a file; stdout to /dev/null and stderr to a file, not pipes: a
    created container inherits them.  Returns the exit code."""
    with open(os.devnull, "wb") as null, open(err_path, "wb") as err:
        return subprocess.run([STRACE, "-qq", "-o", trace_path, "--", *argv], env=env,
                              stdout=null, stderr=err, timeout=60).returncode


def killed_at(argv, point, env=None):
    """Run argv under strace, SIGKILLed on entry to `point` (its children run
    on); whether the kill happened (strace re-raises the tracee's fatal signal
    on itself, so its own exit status says)."""
    with open(os.devnull, "wb") as null:
        r = subprocess.run([STRACE, "-qq", "-o", "/dev/null", "-e", f"trace={point.syscall}",
                            "-e", f"inject={point.syscall}:signal=KILL:when={point.nth}",
                            "--", *argv], env=env, stdout=null, stderr=null, timeout=60)
    return r.returncode == -signal.SIGKILL


# --------------------------------------------------------------------- small tools

def status_of(rt, cid):
    """The container's status, or None when `state` says it does not exist."""
    r = rt.state(cid)
    return json.loads(r.stdout)["status"] if r.returncode == 0 else None


def race_calls(*calls, timeout=60):
    """Run the calls (each returning a CompletedProcess) at the same moment."""
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i):
        barrier.wait()
        results[i] = calls[i]()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results


def race(*calls):
    """race_calls, and each must be a success or one clear error line."""
    results = race_calls(*calls)
    for r in results:
        check_result(r)
    return results


def kill_strays(cid, keep):
    """SIGKILL every process of the container but `keep` (its init)."""
    for pid in processes_naming(cid):
        if pid != keep:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def init_with_child(state_path):
    """The init's pid once state.json has it and the init has forked (a hook)."""
    try:
        with open(state_path) as f:
            pid = json.load(f)["pid"]
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return pid if f.read().split() else None
    except (OSError, ValueError, KeyError):
        return None


def fill_blocks(path):
    """Write `path` until the filesystem is full."""
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass   # full (or, inodes gone, the file could not even be made)


def fill_inodes(d):
    """Make directories under `d` until the filesystem has no inode left."""
    try:
        os.makedirs(d, exist_ok=True)
        i = 0
        while True:
            os.mkdir(os.path.join(d, str(i)))
            i += 1
    except OSError:
        pass
