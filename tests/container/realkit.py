"""Small tools shared by the real-container tests (lifecycle, errors, namespaces,
hooks, console, rootfs).  Like helpers.py, nothing here imports pyrunc's runtime
code: the tests talk to the binaries as clients do."""
import json
import os
import re
import subprocess
import time

# Lists the fds of the shell the runtime exec'd, as "fd N TARGET" lines.
# `[ -L ]` is a builtin stat: probing opens no fd of its own.
SH_FDS = ('i=0; while [ $i -lt 64 ]; do [ -L /proc/$$/fd/$i ] && '
          'echo "fd $i $(readlink /proc/$$/fd/$i)"; i=$((i+1)); done')

# A shell loop that is pid 1 and exits 42 on SIGTERM, 43 on SIGINT (pid 1 gets
# only the signals it has handlers for).
TRAP_LOOP = ('trap "exit 42" TERM; trap "exit 43" INT; echo ready; '
             'while :; do sleep 0.02; done')

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def wait_for(pred, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def status_of(rt, cid):
    r = rt.state(cid)
    return json.loads(r.stdout)["status"] if r.returncode == 0 else None


def wait_status(rt, cid, status, timeout=5.0):
    assert wait_for(lambda: status_of(rt, cid) == status, timeout), \
        f"{rt.name}: {cid} never became {status!r} (is {status_of(rt, cid)!r})"


def without_namespace(config, *types):
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] not in types]
    return config


def place_fds(fds):
    """preexec_fn: `fds` become the child's 3, 4, ... (inheritable); every
    other fd above them is close-on-exec."""
    def place():
        import fcntl
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1000) for fd in fds]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
        for name in os.listdir("/proc/self/fd"):
            if int(name) >= 3 + len(fds):
                try:
                    os.set_inheritable(int(name), False)
                except OSError:
                    pass
    return place


def parse_fds(text):
    """{fd: target} from SH_FDS output."""
    out = {}
    for line in text.splitlines():
        if line.startswith("fd "):
            _, n, target = line.split(" ", 2)
            out[int(n)] = target
    return out


def runtime_processes(*needles):
    """(pid, cmdline) of live processes whose command line names any needle
    (e.g. a runtime's --root): a failed command must leave none."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        if any(n in cmd for n in needles):
            out.append((int(name), cmd))
    return out


def error_line(stderr, runtime_name="pyrunc"):
    """The one `pyrunc: ...` line of a failed command's stderr; its message."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"want one line on stderr, got {lines!r}"
    prefix = f"{runtime_name}: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix):]


def make_searchable(path):
    """o+x on `path` and its ancestors: a container root mapped to another
    uid (user namespace) must be able to reach the bundle in pytest's 0700 dirs."""
    path = os.path.abspath(path)
    while path != "/":
        mode = os.stat(path).st_mode & 0o7777
        if mode & 0o001 == 0:
            os.chmod(path, mode | 0o001)
        path = os.path.dirname(path)


def ns_link(pid, ns):
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def catches(pid, sig):
    """True once `pid` has a handler for `sig` (SigCgt in /proc/<pid>/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            line = next(ln for ln in f if ln.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(line.split()[1], 16) & (1 << (int(sig) - 1)))


def wait_trap(rt, cid, sig=15):
    """Wait until the container's init (TRAP_LOOP) has installed its handler."""
    pid = json.loads(rt.state(cid).stdout)["pid"]
    assert wait_for(lambda: catches(pid, sig)), f"{cid}: pid {pid} never trapped {sig}"


def start_and_wait_exit(rt, cid, timeout=10.0):
    r = rt.start(cid)
    assert r.returncode == 0, r.stderr
    wait_status(rt, cid, "stopped", timeout)


def call_with_files(rt, *args, stdin=None, stdout=None, stderr=None, fds=(), env=None,
                    timeout=30):
    """Run `rt` with the given stdio (open files) and extra fds placed at 3, 4, ..."""
    return subprocess.run(rt.argv(*args), stdin=stdin or subprocess.DEVNULL, stdout=stdout,
                          stderr=stderr, close_fds=False, preexec_fn=place_fds(list(fds)),
                          env=env, timeout=timeout)
