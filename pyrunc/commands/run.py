"""run = create + start, then (unless --detach) wait, forward signals, delete."""
import posix
import _signal as signal   # the C module: `signal` imports enum (~3 ms a call)

from pyrunc.cli import rootless_flag
from pyrunc.lifecycle import create, delete, start

# every signal a foreground `pyrunc run` passes on to the container
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM, signal.SIGPWR,
             signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGURG, signal.SIGVTALRM,
             signal.SIGPROF, signal.SIGIO, signal.SIGXCPU, signal.SIGXFSZ)


def main(g, a):
    root, cid = g["root"], a.args[0]
    detach = a.flags.get("detach", False)
    if not detach and not a.flags.get("no_subreaper"):
        import pyrunc.syscalls as sys_
        # the init is our grandchild: become its reaper to learn its exit status
        sys_.prctl(sys_.C.PR_SET_CHILD_SUBREAPER, 1)
    pending = []
    if not detach:
        # signals that arrive before the init exists are replayed to it
        for s in FORWARDED:
            signal.signal(s, lambda n, _f: pending.append(n))
    pid, console, started = create(root, cid, a.flags.get("bundle") or posix.getcwd(),
                 pid_file=a.flags.get("pid_file"), console_socket=a.flags.get("console_socket"),
                 no_pivot=a.flags.get("no_pivot", False),
                 preserve_fds=a.flags.get("preserve_fds", 0), detach=detach,
                 no_new_keyring=a.flags.get("no_new_keyring", False),
                 systemd_cgroup=g.get("systemd_cgroup", False), rootless=rootless_flag(g),
                 start_now=True)
    master = -1
    try:
        if console is not None:
            from pyrunc.tty_proxy import receive_master
            with console:
                master = receive_master(console)
        if not started:
            start(root, cid)
    except BaseException:
        delete(root, cid, force=True)
        raise
    if detach:
        return 0

    forward_signals(pid, pending)
    if master >= 0:
        from pyrunc.tty_proxy import proxy
        code = proxy(master, pid, _wait_status)
    else:
        code = _wait_status(pid, True)
    if not a.flags.get("keep"):
        delete(root, cid, force=True)
    return code


def _exit_code(status):
    if posix.WIFSIGNALED(status):
        return 128 + posix.WTERMSIG(status)
    return posix.WEXITSTATUS(status)


def _wait_status(pid, block):
    """Reap children (we are a subreaper); pid's exit code once it has exited, else None."""
    while True:
        try:
            got, status = posix.waitpid(-1, 0 if block else posix.WNOHANG)
        except ChildProcessError:
            return 255
        if got == 0:
            return None
        if got == pid:
            return _exit_code(status)


def forward_signals(pid, pending=()):
    """Pass the signals we get on to pid (and replay those that came early)."""
    def forward(n, _frame):
        try:
            posix.kill(pid, n)
        except ProcessLookupError:
            pass
    for s in FORWARDED:
        signal.signal(s, forward)
    for n in pending:
        forward(n, None)


def wait_forwarding(pid, pending=()):
    """Wait for pid (our child, or reparented to us as subreaper), passing signals on.

    Returns its exit code, 128+N when killed by signal N, like a shell.
    """
    forward_signals(pid, pending)
    return _wait_status(pid, True)
