"""The runtime side of create: fork the container, answer it, report its pid.

`launch` returns the init's pid once the init waits on the exec fifo, or
raises after making sure the processes it forked are gone.
"""
import errno
import posix
import sys

from pyrunc import fastjson
from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor.base import Context, run_steps
from pyrunc.executor.hooks import run_hooks
from pyrunc.executor.sync import Channel
from pyrunc.plan.steps import (AwaitStart, BornInCgroup, CloneInit, CreateUserNamespace,
                               ExecAwaitingStart, ExecSpawn, ForkInit, Phase, RunHooks)


def _probe(event, ctx=None):
    # --trace/--faults: cli.py loaded pyrunc.trace; off, this is one dict lookup
    trace = sys.modules.get("pyrunc.trace")
    if trace is not None:
        trace.probe(event, ctx)


def connect_console_socket(path):
    import socket   # only with --console-socket: socket imports enum, selectors (~2 ms)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise RuntimeFailure(f"failed to connect to console socket {path}: "
                             f"{oserror_text(e)}") from None
    return s


def launch(plan, config, container, *, console_socket=None, preserve_fds=0,
           on_pid=None, creating_state=None, for_exec=False, lock_fd=None,
           cgroup_created=None):
    """Fork the container (or, for_exec, a process joining it); returns its pid.

    For create it returns once the init waits on the exec fifo (in the waiter,
    when the plan has ExecAwaitingStart); for exec, and run's create whose
    init execs the program at once, once the process has exec'd (its end of
    the sync socket closed on execve).
    on_pid(pid) is called as soon as the pid is known, so that a crash from
    then on leaves a state file that `delete --force` can act on; not for a
    vfork'd init, set up by the time its pid is known (launch returns it at
    once: the caller records it).
    creating_state(pid) returns the state dict hooks see.
    """
    import pyrunc.syscalls as sys_

    parent, child = Channel.pair()
    # a path (--console-socket) or, for a foreground `run`, our own connected socket
    console = (connect_console_socket(console_socket) if isinstance(console_socket, str)
               else console_socket)
    ctx = Context(sys=sys_, config=config, rootfs=config.root.path,
                  userns=config.linux.namespace("user") is not None,
                  console_socket_fd=console.fileno() if console else -1)
    fifo_fd = -1
    if not for_exec and any(isinstance(s, (AwaitStart, ExecAwaitingStart)) for s in plan.steps):
        posix.mkfifo(container.fifo_path, 0o622)
        fifo_fd = posix.open(container.fifo_path, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
        ctx.extra["fifo_fd"] = fifo_fd
    ctx.extra["preserve_fds"] = preserve_fds
    if cgroup_created is not None:
        ctx.extra["cgroup_created"] = cgroup_created
    _probe("launch", ctx)

    # Every handler either side needs, imported before the fork: after it,
    # each process would pay for the imports and for copying the pages they
    # touch (copy-on-write), on the critical path.
    from pyrunc.executor.init import preload
    preload(plan)
    lock = container.lock_fd if container is not None else lock_fd

    def be_the_child(plan, ctx, shares_memory=False):
        if not shares_memory:
            # (a vfork'd init leaves the object alone, ours too: _close_stray_fds closes the fd)
            parent.close()
        if lock is not None and lock >= 0:
            # flock belongs to the open file: the long-lived init must not hold it
            posix.close(lock)
        from pyrunc.executor.init import child_main
        child_main(plan, ctx, child, preserve_fds)

    clone = next((s for s in plan.phase(Phase.NAMESPACES) if isinstance(s, CloneInit)), None)
    cgroups_done = False
    if clone is not None:
        # CloneInit: the init is born in its cgroups, which must exist first
        try:
            _probe("cgroups")
            run_steps(plan.phase(Phase.CGROUPS), ctx)
            cgroups_done = True
            _probe("go")
            pid, plan, vforked = _clone(plan, clone, ctx, be_the_child)
        except BaseException:
            for end in (parent, child, console):
                if end:
                    end.close()
            if fifo_fd >= 0:
                posix.close(fifo_fd)
            raise
        cloned = not any(isinstance(s, ForkInit) for s in plan.steps)
    else:
        pid, vforked = _fork(plan, ctx, be_the_child)
        cloned = False
    if pid == 0:
        be_the_child(plan, ctx)
    child.close()
    if fifo_fd >= 0:
        posix.close(fifo_fd)
    if ctx.extra.get("waiter_fd") is not None:
        posix.close(ctx.extra.pop("waiter_fd"))   # read for a vfork'd init
    if console:
        console.close()
    init_pid = None
    try:
        ctx.extra["child_pid"] = pid
        if cloned:
            init_pid = pid
            _probe("pid")
            if on_pid and not vforked:
                on_pid(pid)
        else:
            if not cgroups_done:
                _probe("cgroups")
                run_steps(plan.phase(Phase.CGROUPS), ctx)
            if not vforked:   # a vfork'd child went on by itself (plan/execspawn.py)
                _reply(parent, "go")
            _probe("go")
        init_pid = _drive(parent, plan, pid, on_pid, creating_state, ctx, init_pid)
        if for_exec or not any(isinstance(s, AwaitStart) for s in plan.steps):
            _await_exec(parent)   # the last steps, up to the execve, may still fail
    except BaseException:
        from pyrunc.procs import wait_gone
        for p in {pid, init_pid} - {None}:
            _kill_quietly(p)
        _reap(pid)
        if init_pid and init_pid != pid:
            wait_gone(init_pid, 5.0)
            # ours when we are its subreaper: reap it, or it stays a zombie
            # under the container's init once we are gone
            try:
                posix.waitpid(init_pid, posix.WNOHANG)
            except ChildProcessError:
                pass
        raise
    finally:
        parent.close()
    if init_pid != pid:
        _reap(pid)   # the intermediate of a pid-namespace fork
    return init_pid


def _clone(plan, step, ctx, be_the_child):
    """clone3() the init for CloneInit: (pid, plan, vforked); the pid is 0
    in the child, except for a vfork'd one (step.vfork), which has exec'd by
    the time this returns.  Where clone3 fails (no clone3 or CLONE_INTO_CGROUP in this
    kernel, say), posix.fork() and the classic plan, whose steps then say
    precisely what went wrong, if anything."""
    from pyrunc.executor.namespaces import clone_flags
    sys_ = ctx.sys
    fd = -1
    try:
        if step.v2_dir:
            fd = sys_.open(step.v2_dir, sys_.O_DIRECTORY | sys_.O_CLOEXEC)
        flags = clone_flags(sys_, step.ns_types)
        if step.vfork and _prepare_vfork(plan, ctx):
            # the init's own copies: what it stores there must not become ours
            from pyrunc.record import replace
            own = replace(ctx, extra=dict(ctx.extra))
            try:
                return sys_.clone_vm(flags, fd, lambda: be_the_child(plan, own, True)), plan, True
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOSYS):
                    raise
        return sys_.clone_fork(flags, fd), plan, False
    except OSError as e:
        from pyrunc.log import log
        log.debug(f"cloning the init failed ({oserror_text(e)}): forking it the classic way")
    finally:
        if fd >= 0:
            sys_.close(fd)   # in the init too
    from pyrunc.plan.cloneinit import legacy
    from pyrunc.plan.steps import Plan
    return posix.fork(), Plan(tuple(legacy(plan.steps))), False


def _prepare_vfork(plan, ctx):
    """Whether the init may be vfork'd after all, loading pyrunc-init for it
    (ctx.extra["waiter_fd"]) on the way: CloneInit.vfork cannot know that step
    fault rules (--faults) act in the init and may make it wait, nor whether
    pyrunc-init is at hand (without it the init waits for start in Python)."""
    trace = sys.modules.get("pyrunc.trace")
    if trace is not None and trace.faults_armed():
        return False
    from pyrunc.executor.init import load_waiter
    load_waiter(plan, ctx)
    return ctx.extra.get("waiter_fd", 0) is not None


def _fork(plan, ctx, be_the_child):
    """(pid, vforked): posix.fork(), the child born in the plan's BornInCgroup
    directory if it has one (ctx.extra["born_in_cgroup"] says whether that
    worked); vfork'd where the plan's ExecSpawn says so (the pid then is the
    child's, exec'd)."""
    born = next((s for s in plan.phase(Phase.CGROUPS) if isinstance(s, BornInCgroup)), None)
    sys_ = ctx.sys
    fd = -1
    if born is not None:
        try:
            fd = sys_.open(born.dir, sys_.O_DIRECTORY)
        except OSError:
            return posix.fork(), False   # BornInCgroup's handler reports it
    spawn = next((s for s in plan.phase(Phase.START) if isinstance(s, ExecSpawn)), None)
    try:
        if spawn is not None and spawn.vfork and _prepare_vfork(plan, ctx):
            from pyrunc.record import replace
            own = replace(ctx, extra=dict(ctx.extra, vforked=True))
            try:
                pid = sys_.clone_vm(0, fd, lambda: be_the_child(plan, own, True))
                ctx.extra["born_in_cgroup"] = fd >= 0
                return pid, True
            except OSError:
                pass   # no clone3 into a cgroup, threads, not x86_64: the fork below
        if fd < 0:
            return posix.fork(), False
        try:
            pid = sys_.clone_fork(0, fd)
            ctx.extra["born_in_cgroup"] = True
        except OSError:
            pid = posix.fork()   # no clone3 here: BornInCgroup's handler moves the child
        return pid, False
    finally:
        if fd >= 0:
            posix.close(fd)   # in the child too


def _drive(chan, plan, child_pid, on_pid, creating_state, ctx, init_pid=None):
    userns = next((s for s in plan.phase(Phase.NAMESPACES) if isinstance(s, CreateUserNamespace)),
                  None)
    rootfs_done = ready = False
    # pyrunc-init reports the pid of an exec it spawns last, after `ready`
    spawned = any(isinstance(s, ExecSpawn) for s in plan.steps)
    from pyrunc.plan.cloneinit import waits_for_runtime
    answer = waits_for_runtime(plan.steps)
    while True:
        try:
            msg = chan.recv()
        except ConnectionResetError:
            msg = None
        if msg is None:
            raise RuntimeFailure(_DIED)
        kind = msg["t"]
        _probe(kind)
        if kind == "error":
            raise RuntimeFailure(f"unable to start container process: {msg['msg']}")
        if kind == "userns":
            from pyrunc.executor.namespaces import write_id_maps
            write_id_maps(child_pid, userns.uid_mappings, userns.gid_mappings)
            _reply(chan, "ok")
        elif kind == "pid":
            init_pid = msg["pid"]
            if on_pid:
                on_pid(init_pid)
            if ready:
                return init_pid   # pyrunc-init spawned it after our child was ready
        elif kind == "rootfs-done":
            rootfs_done = True
            if not answer:
                _probe("hooks-done")   # none to run: the init did not wait
        elif kind == "ready":
            if msg.get("warnings"):
                from pyrunc.log import log
                for level, text in msg["warnings"]:
                    log.debug(text) if level == "debug" else log.warning(text)
            if init_pid is not None:
                return init_pid
            ready = True
        # After ForkInit the intermediate sends "pid" and the init "rootfs-done"
        # on the same channel: either may come first.  The hooks need the pid.
        if answer and rootfs_done and (init_pid is not None or spawned):
            rootfs_done = False
            state = creating_state(init_pid)
            for step in plan.phase(Phase.RUNTIME_HOOKS):
                if isinstance(step, RunHooks):
                    run_hooks(step.stage, step.hooks, state)
                else:   # host-side work on the new namespaces (MoveNetDevice)
                    ctx.extra["init_pid"] = init_pid
                    run_steps([step], ctx)
            _probe("hooks-done")
            _reply(chan, "ok", state=fastjson.dumps(state))


_DIED = "unable to start container process: init exited unexpectedly"


def _reply(chan, kind, **fields):
    """Answer the container: it being gone (killed, say, by a runtime hook) is
    the same failure as its EOF, not a bare "broken pipe"."""
    try:
        chan.send(kind, **fields)
    except (BrokenPipeError, ConnectionResetError):
        raise RuntimeFailure(_DIED) from None


def _await_exec(chan):
    """After `ready` an exec'd process still has its last steps; EOF means execve worked."""
    msg = chan.recv()
    _probe("exec-done" if msg is None else msg["t"])
    if msg is not None and msg["t"] == "error":
        raise RuntimeFailure(f"unable to start container process: {msg['msg']}")


def _kill_quietly(pid):
    import signal
    try:
        posix.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _reap(pid):
    try:
        posix.waitpid(pid, 0)
    except ChildProcessError:
        pass
