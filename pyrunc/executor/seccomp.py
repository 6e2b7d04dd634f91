"""Handlers for the seccomp steps: connect the agent, compile the filter, load it.

libseccomp builds the filter and exports its BPF program; we install the
program ourselves with seccomp(2), so every filter flag is ours to pass
(libseccomp 2.5 has no WAIT_KILLABLE_RECV) and the listener fd comes straight
from the kernel.

Risk worth knowing: once the filter is loaded, every later syscall of ours goes
through it.  Without noNewPrivileges that is the rest of the setup (capset,
setresuid, chdir, the exec fifo's poll/read, startContainer hooks, close_range,
execve), exactly as runc's Go code runs under it; docker's and podman's default
profiles allow all of these.  A profile that denies one of them makes the
container fail before it starts, with that syscall's error.
"""
from pyrunc import fastjson   # at import time: after pivot_root the stdlib is out of reach
from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor.base import handles
from pyrunc.plan.seccomp import NOTIFY
from pyrunc.plan.steps import CompileSeccomp, ConnectSeccompListener, LoadSeccomp
from pyrunc.record import Record

TSYNC = "SECCOMP_FILTER_FLAG_TSYNC"
WAIT_KILLABLE = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"


class Listener(Record, frozen=False):
    path: str
    sock: int                 # connected to the agent
    proc_fd: int = -1         # O_PATH fd of the runtime's /proc, until the pid is read
    pid: int = 0              # our pid as the runtime sees it


class Program(Record, frozen=False):
    bpf: bytes                # struct sock_filter[]
    flags: int                # for seccomp(SECCOMP_SET_MODE_FILTER)
    listener: bool            # the filter has NOTIFY rules: the kernel gives us an fd
    skipped: tuple = ()       # syscall names this libseccomp does not know
    metadata: str = ""        # linux.seccomp.listenerMetadata, for the agent


@handles(ConnectSeccompListener)
def connect_listener(step, ctx):
    sys = ctx.sys
    try:
        sock = sys.unix_connect(step.path)
    except OSError as e:
        raise RuntimeFailure(f"linux.seccomp.listenerPath: cannot connect to the seccomp agent: "
                             f"connect {step.path}: {oserror_text(e)}") from None
    try:
        # the agent wants our pid as the runtime sees it; inside a new pid
        # namespace only the runtime's /proc still knows it
        proc_fd = sys.open("/proc", sys.O_PATH | sys.O_DIRECTORY)
    except OSError as e:
        sys.close(sock)
        raise RuntimeFailure(f"open /proc: {oserror_text(e)}") from None
    ctx.extra["seccomp_listener"] = Listener(step.path, sock, proc_fd)


@handles(CompileSeccomp)
def compile_seccomp(step, ctx):
    listener = ctx.extra.get("seccomp_listener")
    if listener is not None and listener.proc_fd >= 0:
        _read_pid(ctx.sys, listener)
    ctx.extra["seccomp"] = compile_filter(ctx.sys, step.filter)


def _read_pid(sys, listener):
    try:
        listener.pid = int(sys.readlinkat(listener.proc_fd, "self"))
    except (OSError, TypeError, ValueError) as e:
        raise RuntimeFailure(f"cannot tell our pid for the seccomp agent: {e}") from None
    finally:
        sys.close(listener.proc_fd)
        listener.proc_fd = -1


def compile_filter(sys, f):
    """The Program for a plan.seccomp.SeccompFilter; RuntimeFailure naming the
    config's JSON path when libseccomp or the kernel refuses part of it."""
    C = sys.C
    flags = filter_flags(sys, f.flags)
    try:
        handle = sys.seccomp_new(action_value(C, f.default))
    except OSError as e:
        raise RuntimeFailure(f"linux.seccomp.defaultAction: libseccomp refuses {f.default}: "
                             f"{oserror_text(e)}") from None
    skipped, listener, numbers = [], False, {}
    try:
        for i, arch in enumerate(f.architectures):
            try:
                sys.seccomp_add_arch(handle, getattr(C, arch))
            except OSError as e:
                raise RuntimeFailure(f"linux.seccomp.architectures[{i}]: cannot add {arch} to "
                                     f"the seccomp filter: {oserror_text(e)}") from None
        # No binary-tree layout (SCMP_FLTATR_CTL_OPTIMIZE=2): it triples the
        # export time of docker's profile, and since Linux 5.11 the kernel
        # caches the verdict of every syscall the filter always allows, so
        # the common syscalls never walk the filter anyway.
        for rule in f.rules:
            if rule.syscall not in numbers:
                numbers[rule.syscall] = sys.seccomp_syscall_number(rule.syscall)
            nr = numbers[rule.syscall]
            if nr is None:
                # a syscall of a newer kernel (or no arch of ours): runc skips it too
                skipped.append(rule.syscall)
                continue
            conds = [(c.index, getattr(C, "PYRUNC_" + c.op), c.value, c.value_two)
                     for c in rule.conditions]
            try:
                sys.seccomp_add_rule(handle, action_value(C, rule.action), nr, conds)
            except OSError as e:
                raise RuntimeFailure(f"{rule.where}: cannot add the seccomp rule for syscall "
                                     f"{rule.syscall}: {oserror_text(e)}") from None
            listener = listener or rule.action.name == NOTIFY
        bpf = sys.seccomp_export(handle)
    except OSError as e:
        raise RuntimeFailure(f"linux.seccomp: cannot build the filter: {oserror_text(e)}") from None
    finally:
        sys.seccomp_release(handle)
    if listener:
        flags |= C.SECCOMP_FILTER_FLAG_NEW_LISTENER
        if WAIT_KILLABLE in f.flags:
            flags |= C.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    return Program(bpf, flags, listener, tuple(dict.fromkeys(skipped)), f.listener_metadata)


def filter_flags(sys, names):
    """seccomp(2) flag bits for linux.seccomp.flags, each checked against the kernel.

    TSYNC is left out: the init has a single thread.  WAIT_KILLABLE_RECV only
    means something with a listener (the kernel refuses it without one), so
    compile_filter adds it together with NEW_LISTENER.
    """
    C = sys.C
    bits = 0
    for i, name in enumerate(names):
        if name == TSYNC:
            continue
        bit = getattr(C, name)
        probe = bit | C.SECCOMP_FILTER_FLAG_NEW_LISTENER if name == WAIT_KILLABLE else bit
        if not sys.seccomp_flags_supported(probe):
            raise RuntimeFailure(f"linux.seccomp.flags[{i}]: {name} is not supported "
                                 "by this kernel")
        if name != WAIT_KILLABLE:
            bits |= bit
    return bits


def action_value(C, action):
    name = action.name
    if name == "SCMP_ACT_ERRNO":
        return C.PYRUNC_SCMP_ACT_ERRNO | action.ret
    if name == "SCMP_ACT_TRACE":
        return C.PYRUNC_SCMP_ACT_TRACE | action.ret
    return getattr(C, name)


@handles(LoadSeccomp)
def load_seccomp(step, ctx):
    sys = ctx.sys
    prog = ctx.extra.pop("seccomp")
    listener = ctx.extra.pop("seccomp_listener", None)
    # everything the send needs is computed before the filter binds us
    payload = (process_state(ctx.state_json, listener.pid, prog.metadata)
               if prog.listener else b"")
    try:
        fd = sys.seccomp_load(prog.bpf, prog.flags)
    except OSError as e:
        if listener is not None:
            sys.close(listener.sock)
        raise RuntimeFailure("error loading seccomp filter into kernel: "
                             f"{oserror_text(e)}") from None
    if listener is None:
        return
    try:
        if prog.listener:
            # one state per connection, then close it (runtime-spec)
            sys.send_all_with_fds(listener.sock, payload, [fd])
    except OSError as e:
        raise RuntimeFailure(f"cannot send the seccomp fd to the agent at {listener.path}: "
                             f"{oserror_text(e)}") from None
    finally:
        if prog.listener:
            sys.close(fd)
        sys.close(listener.sock)


def process_state(state_json, pid, metadata):
    """The runtime-spec's container process state, as the bytes sent to the agent."""
    state = fastjson.loads(state_json) if state_json else {}
    doc = {"ociVersion": state.get("ociVersion", "1.0.2"), "fds": ["seccompFd"], "pid": pid}
    if metadata:
        doc["metadata"] = metadata
    doc["state"] = {k: state[k] for k in ("ociVersion", "id", "status", "pid", "bundle",
                                          "annotations") if k in state}
    return fastjson.dumps(doc).encode()
