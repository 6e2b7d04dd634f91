"""Fault injection: rules that make pyrunc fail, stall or die on purpose.

Off unless the caller turns it on: `--faults FILE`, `PYRUNC_FAULTS` (rule text,
or an absolute path to a rules file), and rules from the bundle's annotations
`org.pyrunc.fault.*` only with `--faults-from-annotations` or
`PYRUNC_FAULTS_FROM_ANNOTATIONS=1` -- never by bundle content alone.  cli.py
imports this module only when one of those is set.

A rule is one line, `ACTION key=value ...` (shell quoting; `;` separates rules
on one line, `#` starts a comment):

    fail   cmd=create step=PivotRoot msg="pivot_root: permission denied"
    delay  cmd=start secs=2
    hang   cmd=delete nth=2
    crash  cmd=create step=MountFs nth=3
    die    cmd=start step=Exec code=3
    badpid cmd=create content="{pid}\\n"
    badlog cmd=create

Selectors: cmd (comma list), id (glob), annotation (KEY or KEY=VALUE), step
(plan step type names, comma list), nth (N: only the Nth matching call, N+:
the Nth and every later one).  Without `step` a rule acts when the command
starts and nth counts invocations (in PYRUNC_FAULTS_STATE, default
/tmp/pyrunc-faults-<uid>); with `step` it acts right before that step, in whichever
process runs it, and nth counts steps within that process.  The steps of an
init after AwaitStart run during `start`: they match cmd=start.
"""
import fnmatch
import os
import select
import signal
import time

from pyrunc.errors import PyruncError
from pyrunc.faultrules import (ANNOTATION_PREFIX, Rule, annotation_rules, load_rules,  # noqa: F401
                              parse_rules)

# the sync message a container process sends to make the runtime crash (the
# runtime sees it through launch.py's probe: it writes its trace line, then
# SIGKILLs itself); a signal could not cross into a new pid namespace
CRASH_REQUEST = "fault-crash"
# and the note it sends before it hangs at a step (the runtime's trace names it)
HANG_NOTE = "fault-hang"
# what a cut-off JSON log line looks like (containerd cannot parse it)
BAD_LOG_LINE = '{"level":"error","msg":"injected: this line is cut sh'


class InjectedFault(PyruncError):
    """The error a `fail` rule raises: reported like any other."""

    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.exit_code = code


# --- matching and acting -----------------------------------------------------------

# the commands whose steps a launched process runs: a created init's steps
# after AwaitStart belong to `start`
_STEP_COMMANDS = {"create": ("create", "start")}


class Faults:
    """The rules of one invocation, and what they do.

    Built in the runtime before anything happens; its at_step travels into the
    forked container processes in ctx.extra["fault_at"].
    """

    def __init__(self, rules, *, command, cid=None, root=None, annotations=None,
                 state_dir=None):
        self.command = command
        self.cid = cid
        self.root = root
        self.annotations = annotations or {}
        self.state_dir = state_dir
        self.rules = [r for r in rules if self._selects(r)]
        self.runtime_pid = os.getpid()
        self.fired = []               # what fired in this process (the trace's "faults")
        self._step_seen = {}          # rule index -> matching steps seen (nth)
        self._step_cmd = command      # the command the next step belongs to
        self._sync_ch = None          # the container process's sync channel, once seen

    def _selects(self, r):
        """cmd (or a command whose steps we run), id, annotation."""
        cmds = _STEP_COMMANDS.get(self.command, (self.command,)) if r.step else (self.command,)
        if r.cmd and not any(c in r.cmd for c in cmds):
            return False
        if r.id is not None and not (self.cid and fnmatch.fnmatchcase(self.cid, r.id)):
            return False
        if r.annotation is not None:
            key, value = r.annotation
            if key not in self.annotations or (value is not None
                                                and str(self.annotations[key]) != value):
                return False
        return True

    def step_rules(self):
        return [r for r in self.rules if r.step]

    def act_after_start(self):
        """A step rule for `start`: the init must stay Python after start
        (no sealed waiter) for it to act there."""
        return any(not r.cmd or "start" in r.cmd for r in self.step_rules())

    # --- at command start / end (the runtime) ---------------------------------
    def before_command(self):
        # every rule counts this call before any acts: one rule's failure
        # must not change another's count
        due = [r for r in self.rules if not r.step and r.action not in ("badpid", "badlog")
               and not (r.action == "die" and self.command in ("create", "run"))  # no init yet
               and self._count(r)]
        for r in due:
            self._act(r, "command", None)

    def after_command(self, code, gflags, flags):
        """badpid / badlog, and die for create: after the command did its work."""
        due = [r for r in self.rules if not r.step and r.action in ("badpid", "badlog", "die")
               and not (r.action == "die" and (self.command != "create" or code != 0))
               and not (r.action == "badpid" and (code != 0 or not flags.get("pid_file")))
               and self._count(r)]
        for r in due:
            self.fired.append(dict(r.describe(), at="end"))
            if r.action == "badpid":
                _overwrite_pid_file(flags["pid_file"], r.content)
            elif r.action == "badlog":
                if gflags.get("log"):
                    _append(gflags["log"], (r.content if r.content is not None
                                            else BAD_LOG_LINE) + "\n")
            elif r.action == "die":
                self._kill_init()

    # --- at a step (any process) ------------------------------------------------
    def at_step(self, step, ctx):
        name = type(step).__name__
        for i, r in enumerate(self.rules):
            if not r.step or name not in r.step:
                continue
            if r.cmd and self._step_cmd not in r.cmd:
                continue
            seen = self._step_seen[i] = self._step_seen.get(i, 0) + 1
            if r.nth and not (seen == r.nth or (r.nth_on and seen > r.nth)):
                continue
            self._act(r, name, ctx, step)
        if name == "AwaitStart" and self._step_cmd == "create":
            self._step_cmd = "start"

    def arm(self, ctx):
        """Give the container processes the step rules; install the runtime's
        handlers for faults that end it from there."""
        rules = self.step_rules()
        if not rules:
            return
        ctx.extra["fault_at"] = self.at_step
        if any(r.action == "hang" for r in rules):
            self.catch_kill_signals()

    # --- the actions --------------------------------------------------------------
    def _act(self, r, at, ctx, step=None):
        in_runtime = os.getpid() == self.runtime_pid
        if in_runtime:
            self.fired.append(dict(r.describe(), at=at))
        if r.action == "fail":
            code = 1 if r.code is None else r.code
            raise InjectedFault(r.msg or f"injected fault: {r.text}", code)
        if r.action == "delay":
            time.sleep(r.secs)
        elif r.action == "hang":
            self._hang(ctx, step)
        elif r.action == "crash" or (r.action == "die" and in_runtime and at != "command"):
            self._crash(ctx)
        elif r.action == "die":
            if at == "command":
                self._kill_init()
            else:
                _die(r.code)

    def _crash(self, ctx):
        if os.getpid() == self.runtime_pid:
            from pyrunc import trace
            trace.write_now(end="crash")
            os.kill(os.getpid(), signal.SIGKILL)
        sync = self._sync(ctx)
        if sync is None:
            return    # the runtime is done with us (a step after create returned)
        try:
            sync.send(CRASH_REQUEST)
        except OSError:
            return
        # go on only once it is gone, as a container process would after a real crash
        _wait_hangup(sync, 10.0)

    def hang_noted(self):
        self.fired.append({"action": "hang", "at": "container process",
                           "rule": "; ".join(r.text for r in self.rules if r.action == "hang")})

    def crash_requested(self):
        """In the runtime: a container process reached a `crash` step."""
        from pyrunc import trace
        self.fired.append({"action": "crash", "at": "container process",
                           "rule": "; ".join(r.text for r in self.rules if r.action == "crash")})
        trace.write_now(end="crash")
        os.kill(os.getpid(), signal.SIGKILL)

    def _hang(self, ctx, step=None):
        if os.getpid() == self.runtime_pid:
            self.catch_kill_signals()
            while True:
                signal.pause()
        sync = self._sync(ctx)
        if sync is not None:
            if step is not None and step.phase.value != "start":
                # tell the runtime, for its trace (after `ready` an exec's
                # runtime would take any message for the end of the exec)
                try:
                    sync.send(HANG_NOTE)
                except OSError:
                    pass
            _wait_hangup(sync, None)
            os._exit(1)      # the runtime is gone: as after any lost sync
        while True:
            signal.pause()

    def catch_kill_signals(self):
        """The runtime hangs (or waits on a hanging child): whoever kills it
        with TERM/INT/HUP still gets its trace line."""
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._killed_while_hanging)

    def _killed_while_hanging(self, signum, _frame):
        if os.getpid() == self.runtime_pid:
            from pyrunc import trace
            trace.write_now(end="hang", signal=signal.Signals(signum).name)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _sync(self, ctx):
        """The sync channel to the runtime, while it is open (None in the runtime)."""
        if ctx is not None and ctx.extra.get("sync") is not None:
            self._sync_ch = ctx.extra["sync"]
        sync = self._sync_ch
        return sync if sync is not None and sync.fileno() >= 0 else None

    def _kill_init(self):
        """SIGKILL the container's init (pid checked against its start time), wait till gone."""
        from pyrunc.state import Container
        if not (self.root and self.cid):
            return
        try:
            st = Container(self.root, self.cid).load()
        except (PyruncError, OSError):
            return
        if st.alive():
            os.kill(st.pid, signal.SIGKILL)
            from pyrunc.procs import wait_gone
            wait_gone(st.pid, 5.0)

    # --- nth across invocations -------------------------------------------------
    def _count(self, r):
        """True when this invocation is one the rule's nth picks (counts it)."""
        if not r.nth:
            return True
        n = _bump(self.state_dir, _counter_key(r, self.cid))
        return n == r.nth or (r.nth_on and n > r.nth)


def _counter_key(r, cid):
    import hashlib
    # an annotation's rule counts for its own container only
    scope = cid if r.source.startswith("annotation:") else ""
    return hashlib.sha256(f"{r.text}\0{scope}".encode()).hexdigest()[:24]


def default_state_dir(env):
    """Where nth counters live: PYRUNC_FAULTS_STATE, else a per-user dir in
    the temp dir (podman passes the runtime no environment to set it with)."""
    if env.get("PYRUNC_FAULTS_STATE"):
        return env["PYRUNC_FAULTS_STATE"]
    import tempfile
    return os.path.join(tempfile.gettempdir(), f"pyrunc-faults-{os.geteuid()}")


def _bump(state_dir, key):
    import fcntl
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(state_dir, key), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)      # concurrent invocations count one by one
        data = os.read(fd, 64)
        n = int(data or b"0") + 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(n).encode())
        return n
    finally:
        os.close(fd)


def _die(code):
    if code is not None:
        os._exit(code)
    os.kill(os.getpid(), signal.SIGKILL)
    # pid 1 of a pid namespace ignores signals it sent itself: exit as if killed
    os._exit(128 + signal.SIGKILL)


def _wait_hangup(sync, timeout):
    """Until the runtime's end of the sync socket is closed (it died)."""
    if sync is None:
        return
    p = select.poll()
    p.register(sync.fileno(), select.POLLRDHUP | select.POLLHUP)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0, deadline - time.monotonic())
        try:
            events = p.poll(None if left is None else int(left * 1000))
        except InterruptedError:
            continue
        if any(ev & (select.POLLHUP | select.POLLRDHUP | select.POLLERR) for _, ev in events):
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        if events:
            time.sleep(0.01)   # a message came in; we only wait for the hangup


def _overwrite_pid_file(path, content):
    try:
        with open(path) as f:
            pid = f.read().strip()
    except OSError:
        pid = ""
    text = (content if content is not None else "not-a-pid").replace("{pid}", pid)
    with open(path, "w") as f:
        f.write(text)


def _append(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
