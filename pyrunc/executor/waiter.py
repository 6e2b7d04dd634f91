"""The sealed waiter: a created container's pid 1 is pyrunc-init (waiter.c).

The init loads the program into a sealed memfd while it can still read the
host's files (init.load_waiter, before pivot_root) and, once the container is set up,
execs it with ExecAwaitingStart.  From then on /proc/1/exe is a file that no
one can write (CVE-2019-5736) and the waiting container holds a few pages
instead of a copy of the runtime.
"""
import errno
import posix

from pyrunc import pathstr
from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor.base import handles
from pyrunc.executor.init import await_start
from pyrunc.executor.process import exec_program, with_home
from pyrunc.plan.steps import Exec, ExecAwaitingStart, ExecSpawn

# built by install.sh next to this package's modules
PROGRAM = pathstr.join(pathstr.dirname(pathstr.dirname(pathstr.abspath(__file__))), "_waiter")
NAME = "pyrunc-init"


def load(sys, warnings, path=PROGRAM):
    """A sealed memfd copy of the waiter, or None when there is none (the
    Python init then waits itself, without the CVE-2019-5736 defence, and
    says so in warnings: a list of (level, text))."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return sys.sealed_memfd(NAME, data, executable=True)
    except OSError as e:
        # not built, or a host that refuses executable memfds (vm.memfd_noexec=2)
        warnings.append(("warning", f"{NAME} unavailable ({path}: {oserror_text(e)}): "
                                    "the created container waits in the runtime's interpreter"))
        return None


@handles(ExecAwaitingStart)
def exec_awaiting_start(step, ctx):
    if ctx.extra.get("waiter_fd") is None:
        # `create` returns when our end of the sync socket closes
        ctx.extra["sync"].close()
        await_start(step, ctx)
        exec_program(Exec(step.args, step.env), ctx)
        return
    _exec_waiter(step, ctx, ctx.extra["fifo_fd"])


def _exec_waiter(step, ctx, fd, mode=(), flags=(), via_proc=True):
    """Exec pyrunc-init [MODE] FD PROGRAM_FD [FLAGS], the program in a memfd.

    The container's seccomp filter is loaded by now.  create (via_proc) execs
    the memfd through the container's /proc with execve(2), the call runc
    execs the program with, so that a profile is asked nothing runc does not
    ask of it (execveat where that /proc is missing).  exec runs outside the
    container's pid namespace, where that /proc has no "self": it uses
    fexecve (execveat), and where a profile refuses that, this undoes what it
    did and returns True: the caller goes on without pyrunc-init."""
    sys = ctx.sys
    path = ctx.exec_path or step.args[0]
    try:
        program = sys.sealed_memfd(NAME + "-program", program_blob(path, step.args))
        for keep in (fd, program):
            sys.set_inheritable(keep, True)   # CloseFds made every fd close-on-exec
        argv = [NAME, *mode, str(fd), str(program), *flags]
        env = with_home(step.env, ctx.extra.get("home", "/"))
        waiter = ctx.extra["waiter_fd"]
        if via_proc:
            try:
                sys.execve(f"/proc/self/fd/{waiter}", argv, env)
            except (FileNotFoundError, NotADirectoryError):
                pass   # no procfs at /proc in this container
            sys.fexecve(waiter, argv, env)
            return None
        try:
            sys.fexecve(waiter, argv, env)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EACCES, errno.ENOSYS):
                raise
            sys.close(program)
            sys.set_inheritable(fd, False)
            return True
    except OSError as e:
        raise RuntimeFailure(f"exec {NAME}: {oserror_text(e)}") from None
    return None


def program_blob(path, args):
    """What the waiter reads from its PROGRAM_FD: path and argv, NUL-terminated."""
    return b"".join(pathstr.fsencode(a) + b"\0" for a in (path, *args))


@handles(ExecSpawn)
def exec_spawn(step, ctx):
    sys = ctx.sys
    sync = ctx.extra["sync"]
    if ctx.extra.get("waiter_fd") is not None and not _exec_waiter(
            step, ctx, sync.fileno(), ("spawn",), ("1" if step.ctty else "0",),
            via_proc=False):
        return   # (only a recording sys returns from an exec)
    # no pyrunc-init (or a seccomp profile refused its exec): fork into the
    # pid namespace from here, as Python
    pid = sys.fork()
    if pid:
        sync.send("pid", pid=pid)
        posix._exit(0)
    if step.ctty:
        sys.setsid()
        sys.setctty(0)
    exec_program(Exec(step.args, step.env), ctx)
