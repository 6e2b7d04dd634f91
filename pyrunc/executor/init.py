"""The container side: what the forked child (and then the init) runs.

It carries out the plan's NAMESPACES, ROOTFS, CONTAINER and START phases,
pausing at the points where `pyrunc create` must act from outside (id maps,
runtime hooks).  It never returns: it execs the user program or exits.
"""
import posix
import select
import _signal as signal   # the C module: `signal` imports enum (~3 ms a call)

from pyrunc.executor.base import handler_for, handles, run_steps
from pyrunc.plan.cloneinit import waits_for_runtime
from pyrunc.plan.steps import AwaitStart, CloneInit, ExecAwaitingStart, ExecSpawn, Phase, RunHooks


def child_main(plan, ctx, sync, keep_fds):
    """Entry point right after fork() in `pyrunc create`."""
    code = 1
    try:
        # CVE-2016-9962 / CVE-2019-5736: nobody may ptrace us or open
        # /proc/<pid>/exe (the host's interpreter) while we hold host resources.
        ctx.sys.prctl(ctx.sys.C.PR_SET_DUMPABLE, 0)
        ctx.extra["sync"] = sync
        _close_stray_fds(ctx, sync, keep_fds)
        load_waiter(plan, ctx)   # launch() ran preload(plan) before forking us
        # wait until the runtime has made our cgroups and set their limits:
        # we join them first thing (EnterCgroups), or the runtime put us there
        # (JoinCgroup), so that the init is born inside them.  CloneInit: we
        # are the init, cloned once they were ready.
        # A vfork'd exec child: born in its v2 cgroup, nothing to wait for.
        if not any(isinstance(s, CloneInit) for s in plan.steps) and not ctx.extra.get("vforked"):
            sync.expect("go")
        run_steps(plan.phase(Phase.NAMESPACES), ctx)
        spawned = any(isinstance(s, ExecSpawn) for s in plan.steps)
        if not ctx.extra.get("forked") and not spawned:
            sync.send("pid", pid=posix.getpid())   # no pid namespace: we are the init
        run_steps(plan.phase(Phase.ROOTFS), ctx)
        sync.send("rootfs-done")
        if waits_for_runtime(plan.steps):
            msg = sync.expect("ok")
            ctx.state_json = msg["state"].encode()
        run_steps(plan.phase(Phase.CONTAINER), ctx)
        # warnings found in here (ignored caps, ...) are logged by the runtime
        sync.send("ready", warnings=ctx.extra.get("warnings", []))
        if any(isinstance(s, AwaitStart) for s in plan.steps):
            sync.close()   # create is done with us; start comes through the fifo
        # else create waits for the close-on-exec sync socket to close: the
        # exec of the program (exec) or of the waiter (ExecAwaitingStart)
        _reset_signals(ctx)
        run_steps(plan.phase(Phase.START), ctx)
        code = 0  # not reached: the last START step execs
    except BaseException as e:  # noqa: B902 - anything must reach the parent as text
        from pyrunc.errors import PyruncError, oserror_text
        if isinstance(e, PyruncError):
            text = str(e)
        elif isinstance(e, OSError):
            text = f"{e.filename + ': ' if e.filename else ''}{oserror_text(e)}"
        else:
            text = f"internal error: {type(e).__name__}: {e}"
        try:
            sync.send("error", msg=text)
        except OSError:
            pass
    finally:
        posix._exit(code)


def _close_stray_fds(ctx, sync, preserve_fds):
    """Drop every fd the caller leaked into create (the shim's listen socket is
    fd 3) now, not at exec: a created container may wait for hours."""
    keep = {0, 1, 2, sync.fileno(), ctx.console_socket_fd, ctx.extra.get("fifo_fd", -1),
            ctx.extra.get("waiter_fd", -1)}
    keep.update(range(3, 3 + preserve_fds))
    # the gaps between the fds we keep, each with one close_range(2)
    low = 0
    for fd in sorted(keep - {-1}) + [(1 << 31) - 1]:
        if fd > low:
            posix.closerange(low, fd)
        low = fd + 1


def preload(plan):
    """Import now whatever the steps will need, before the fork: after
    pivot_root the container's root has no Python library, so a lazy import
    there would fail (and each process would pay for it after the fork)."""
    for step in plan.steps:
        handler_for(step)
    if any(isinstance(s, RunHooks) and s.phase in (Phase.CONTAINER, Phase.START)
           for s in plan.steps):
        import subprocess  # noqa: F401
    import pyrunc.errors  # noqa: F401


def load_waiter(plan, ctx):
    """The child's sealed copy of pyrunc-init, read now for the same reason
    (executor/waiter.py); a vfork'd init's runtime read it already."""
    if "waiter_fd" not in ctx.extra and any(isinstance(s, (ExecAwaitingStart, ExecSpawn))
                                            for s in plan.steps):
        from pyrunc.executor import waiter
        ctx.extra["waiter_fd"] = waiter.load(ctx.sys, ctx.extra.setdefault("warnings", []))


def _reset_signals(ctx):
    # Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive execve,
    # and the container must start with the defaults.  The kernel's only: a
    # vfork'd init shares the runtime's own table of Python handlers.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        ctx.sys.default_signal(sig)


# While it waits, a pid-1 init would ignore these (no handler, SIG_DFL);
# runc's waiting init dies of them, and `docker stop` / `ctr task kill` of a
# created container count on that.
_DEADLY_WHILE_WAITING = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
                         signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)


def _die_of(signum, _frame):
    posix._exit(128 + signum)


@handles(AwaitStart)
def await_start(step, ctx):
    fd = ctx.extra["fifo_fd"]
    for s in _DEADLY_WHILE_WAITING:
        signal.signal(s, _die_of)
    # The fifo was opened O_RDONLY|O_NONBLOCK: poll reports nothing until a
    # writer (`pyrunc start`) has come, so this blocks until start.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        if events and events[0][1] & select.POLLIN:
            posix.read(fd, 1)
            break
        if events and events[0][1] & select.POLLHUP:
            break
    for s in _DEADLY_WHILE_WAITING:
        signal.signal(s, signal.SIG_DFL)   # as _reset_signals left them
    posix.close(fd)
    ctx.state_json = ctx.state_json.replace(b'"status": "creating"', b'"status": "created"')
