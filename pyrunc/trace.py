"""--trace FILE / PYRUNC_TRACE=FILE: one JSON line per pyrunc invocation.

This module is also where every instrumented run starts (tracing, fault
injection or both): cli.main calls instrumented_main only when a switch is
set, so with both off neither this module nor pyrunc.faults is imported.

A line holds: time, pid, argv, command, id, root, bundle; what stdin, stdout
and stderr are and which other fds were open on entry; phase timings in ms;
the exit code (null when the process did not end by itself: end is "crash" or
"hang"), the last error message, and the faults that fired.  Lines are
appended with one write() under an flock, so concurrent invocations (the shim
runs several at once) never interleave.

Phases come from marks: launch.py marks the sync messages of create/exec
("launch", "cgroups", "go", "pid", "rootfs-done", "hooks-done", "ready",
"exec-done"), so parse = entry -> launch, cgroups = cgroups -> go,
namespaces = go -> pid, mounts = pid -> rootfs-done, hooks = the runtime
hooks, container = hooks -> ready (pivot_root, process settings),
exec = ready -> execve (exec only).
"""
import json
import os
import stat
import sys
import time

_current = None        # the Invocation this process records, when instrumented


def mark(name):
    if _current is not None:
        _current.marks.append((name, time.perf_counter()))


def probe(name, ctx=None):
    """launch.py's hook: a mark, and (with ctx) arming the step faults."""
    mark(name)
    faults = _current.faults if _current is not None else None
    if faults is None:
        return
    if ctx is not None:
        faults.arm(ctx)
    elif name == "fault-crash":
        faults.crash_requested()
    elif name == "fault-hang":
        faults.hang_noted()


def faults_act_after_start():
    """Whether a step fault rule may act in the init during `start`."""
    faults = _current.faults if _current is not None else None
    return faults is not None and faults.act_after_start()


def faults_armed():
    """Whether fault rules are in force in this process (--faults)."""
    return _current is not None and _current.faults is not None


def write_now(end, signal=None):
    """Write this invocation's line now: the process is about to be killed."""
    if _current is not None and os.getpid() == _current.pid:
        _current.finish(None, end=end, signal=signal)


class Invocation:
    def __init__(self, argv, path):
        self.t0 = time.perf_counter()
        self.wall = time.time()
        self.pid = os.getpid()
        self.argv = list(argv)
        self.path = path               # None: faults only, nothing written
        self.marks = []
        self.stdio = {name: describe_fd(fd) for fd, name in
                      ((0, "stdin"), (1, "stdout"), (2, "stderr"))}
        self.extra_fds = open_fds()
        self.command = self.cid = self.root = self.bundle = None
        self.annotations = {}
        self.errors = []
        self.faults = None
        self.written = False

    def learn(self, argv):
        """command, id, root, bundle (and the container's annotations) from argv and state."""
        from pyrunc import cli
        from pyrunc.errors import PyruncError
        try:
            gflags, cmd, args = cli.parse(argv)
        except PyruncError:
            return {}, None
        self.command = cmd
        if args is None:
            return gflags, None
        if cmd not in ("list", "spec", "features", "plan", "trace", "demo") and args.args:
            self.cid = args.args[0]
        try:
            from pyrunc.state import default_root
            self.root = gflags.get("root") or default_root()
        except (PyruncError, OSError):
            pass
        if cmd in ("create", "run", "plan"):
            self.bundle = os.path.abspath(args.flags.get("bundle") or os.getcwd())
            config = _read_json(os.path.join(self.bundle, "config.json"))
            self.annotations = config.get("annotations") or {} if isinstance(config, dict) else {}
        elif self.cid and self.root:
            st = _read_json(os.path.join(self.root, self.cid, "state.json"))
            if isinstance(st, dict):
                self.bundle = st.get("bundle")
                self.annotations = st.get("annotations") or {}
        return gflags, args

    def record(self, code, end="exit", signal=None):
        now = time.perf_counter()
        rec = {
            "time": _rfc3339(self.wall), "pid": self.pid, "argv": self.argv,
            "command": self.command, "id": self.cid, "root": self.root, "bundle": self.bundle,
            "stdio": self.stdio, "extra_fds": self.extra_fds,
            "phases_ms": phases(self.marks, self.t0),
            "total_ms": round((now - self.t0) * 1000, 2),
            "exit": code, "end": end,
            "error": self.errors[-1] if self.errors else None,
            "faults": list(self.faults.fired) if self.faults is not None else [],
        }
        if signal:
            rec["signal"] = signal
        return rec

    def finish(self, code, end="exit", signal=None):
        if self.written or not self.path:
            return
        self.written = True
        append_line(self.path, json.dumps(self.record(code, end, signal)) + "\n")


def phases(marks, t0):
    first = {}
    for name, t in marks:
        first.setdefault(name, t)
    out = {}

    def span(name, a, b):
        if a is not None and b is not None:
            out[name] = round(max(0.0, b - a) * 1000, 2)
    g = first.get
    span("parse", t0, g("launch"))
    span("cgroups", g("cgroups"), g("go"))
    span("namespaces", g("go"), g("pid"))
    span("mounts", g("pid"), g("rootfs-done"))
    ends = [t for t in (g("pid"), g("rootfs-done")) if t is not None]
    span("hooks", max(ends) if ends else None, g("hooks-done"))
    span("container", g("hooks-done"), g("ready"))
    span("exec", g("ready"), g("exec-done"))
    return out


def append_line(path, line):
    import fcntl
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = line.encode()
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass
    finally:
        os.close(fd)


# --- what the fds are ---------------------------------------------------------------

def describe_fd(fd):
    """tty:/dev/pts/N, pipe, socket, /dev/null, file:PATH, dir:PATH, char:PATH or closed."""
    try:
        st = os.fstat(fd)
    except OSError:
        return "closed"
    mode = st.st_mode
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    where = _fd_path(fd)
    if stat.S_ISCHR(mode):
        if st.st_rdev == os.makedev(1, 3):
            return "/dev/null"
        return ("tty:" if os.isatty(fd) else "char:") + where
    if stat.S_ISREG(mode):
        return "file:" + where
    if stat.S_ISDIR(mode):
        return "dir:" + where
    return "other:" + where


def _fd_path(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def open_fds():
    """{fd: description} of every fd above 2 open now (the caller's leaks)."""
    try:
        fds = sorted(int(n) for n in os.listdir("/proc/self/fd") if int(n) > 2)
    except OSError:
        return {}
    own = {getattr(f, "fd", None) for f in sys.meta_path if type(f).__name__ == "ImageFinder"}
    described = ((fd, describe_fd(fd)) for fd in fds if fd not in own)
    # the fd listdir used is closed by now; the launcher's image is ours
    return {str(fd): what for fd, what in described if what != "closed"}


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


# --- the instrumented run -------------------------------------------------------------

def instrumented_main(run, argv):
    """cli.main with tracing and/or faults on: run(argv) is the plain main."""
    global _current
    from pyrunc import cli
    from pyrunc.errors import PyruncError, UsageError
    from pyrunc.log import log
    env = os.environ
    try:
        early, _ = cli._parse_flags(argv, cli.GLOBAL_FLAGS, {})
    except UsageError:
        early = {}
    inv = _current = Invocation(argv, early.get("trace") or env.get("PYRUNC_TRACE") or None)
    gflags, args = inv.learn(argv)
    # the messages the command reports: the trace's "error"
    shadowed = log.__dict__.get("error")
    plain_error = log.error
    log.error = lambda msg: (inv.errors.append(" ".join(str(msg).split("\n"))),
                             plain_error(msg))
    log.configure(early.get("log"), early.get("log_format", "text"), early.get("debug", False))
    code = None
    try:
        try:
            inv.faults = _faults(inv, early, env)
            if inv.faults is not None:
                inv.faults.before_command()
        except PyruncError as e:
            log.error(str(e))
            code = e.exit_code
        else:
            code = run(argv)
        if inv.faults is not None:
            try:
                inv.faults.after_command(code, gflags, args.flags if args is not None else {})
            except (PyruncError, OSError) as e:
                log.error(str(e))
        return code
    except BaseException as e:
        if code is None and not isinstance(e, SystemExit):
            inv.errors.append(f"{type(e).__name__}: {e}")
        raise
    finally:
        inv.finish(code)
        _current = None
        if shadowed is None:
            log.__dict__.pop("error", None)
        else:
            log.error = shadowed


def _faults(inv, early, env):
    """The invocation's Faults, or None when fault injection is off."""
    from_annotations = early.get("faults_from_annotations") or \
        env.get("PYRUNC_FAULTS_FROM_ANNOTATIONS", "") not in ("", "0", "false")
    if not (early.get("faults") or env.get("PYRUNC_FAULTS") or from_annotations):
        return None
    if inv.command in (None, "help", "version"):
        return None
    from pyrunc import faults
    from pyrunc.errors import UsageError
    rules = faults.load_rules(early.get("faults"), env)
    if from_annotations:
        try:
            rules += faults.annotation_rules(inv.annotations)
        except UsageError as e:
            if inv.command in ("create", "run"):
                raise
            # refused at create already: a bad rule must not make the container
            # impossible to kill or delete
            from pyrunc.log import log
            log.warning(f"ignored: {e}")
    if not rules:
        return None
    return faults.Faults(rules, command=inv.command, cid=inv.cid, root=inv.root,
                         annotations=inv.annotations, state_dir=faults.default_state_dir(env))
