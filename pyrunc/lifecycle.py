"""The lifecycle operations: create, start, kill, delete — one function each.

Commands (pyrunc/commands/*) parse flags and call these; `run` chains them.
"""
import posix   # not os: see pyrunc/state.py
import sys
import _signal as signal   # the C module: `signal` imports enum (~3 ms a call)

from pyrunc.errors import ContainerNotFound, RuntimeFailure, StateError, UsageError
from pyrunc.log import log
from pyrunc.state import (OCI_VERSION, Container, State, proc_start_time, rfc3339_now,
                          write_new)


def _hooks_from_dicts(dicts):
    from pyrunc.spec.config import Hook
    return tuple(Hook.from_dict(d) for d in dicts)


def write_pid_file(path, pid):
    # containerd parses it strictly: the decimal pid and no newline
    from pyrunc import pathstr   # create's and run's: start, kill, delete go without
    path = pathstr.abspath(path)
    tmp = pathstr.join(pathstr.dirname(path), "." + pathstr.basename(path) + ".tmp")
    try:
        write_new(tmp, str(pid).encode())
        posix.rename(tmp, path)
    except OSError as e:
        from pyrunc.errors import oserror_text
        raise RuntimeFailure(f"failed to write pid file {path}: {oserror_text(e)}") from None


def create(root, cid, bundle, *, pid_file=None, console_socket=None, no_pivot=False,
           preserve_fds=0, detach=True, no_new_keyring=False, systemd_cgroup=False, rootless=None,
           start_now=False):
    """Create the container; returns (init pid, console, started) where console
    is the socket the pty master arrives on when a foreground run made its own.

    start_now (`run`): start it too, where nothing needs the init to wait for a
    separate start (no startContainer hooks): the init execs the program as
    soon as it is set up, and the poststart hooks run here; started says so."""
    from pyrunc.spec.loader import load_bundle
    from pyrunc import pathstr
    bundle = pathstr.abspath(bundle)
    config = load_bundle(bundle)
    if config.process is None:
        raise UsageError("config.json: process is required to create a container")
    own_console = None
    if config.process.terminal and not console_socket:
        if detach:
            raise UsageError("cannot allocate tty if pyrunc will detach without setting "
                             "console socket")
        # a foreground `run` on the caller's terminal: the pty master comes to us
        import socket
        own_console, console_socket = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    if console_socket and not config.process.terminal:
        raise UsageError("cannot use console socket if pyrunc will not detach or allocate tty")
    if preserve_fds < 0:
        raise UsageError("--preserve-fds must be >= 0")
    from pyrunc.plan.build import build_plan
    trace = sys.modules.get("pyrunc.trace")   # loaded only with --trace/--faults
    plan = build_plan(config, cid=cid, no_pivot=no_pivot, no_new_keyring=no_new_keyring,
                      preserve_fds=preserve_fds, systemd_cgroup=systemd_cgroup, rootless=rootless,
                      init_after_start=trace is not None and trace.faults_act_after_start(),
                      start_now=start_now)
    from pyrunc.plan.cgroups import cgroup_dirs
    from pyrunc.plan.steps import AwaitStart, ExecAwaitingStart, Phase

    c = Container(root, cid)
    c.make_dir()
    try:
        st = State(id=cid, pid=0, bundle=bundle, rootfs=config.root.path, created=rfc3339_now(),
                   annotations=config.annotations, status_hint="creating",
                   new_pid_ns=config.linux.namespace("pid") is not None,
                   config=config.raw, cgroups=cgroup_dirs(plan.phase(Phase.CGROUPS)))
        c.save(st)   # before anything exists: a crash leaves what delete --force needs

        def on_pid(pid):
            st.pid = pid
            st.init_start_time = proc_start_time(pid) or 0
            c.save(st)

        def creating_state(pid):
            return {"ociVersion": OCI_VERSION, "id": cid, "status": "creating", "pid": pid,
                    "bundle": bundle, "annotations": config.annotations}

        from pyrunc.executor.launch import launch
        pid = launch(plan, config, c, console_socket=console_socket, preserve_fds=preserve_fds,
                     on_pid=on_pid, creating_state=creating_state,
                     cgroup_created=st.cgroups_created)
        if st.pid != pid:   # a vfork'd init: on_pid was not called
            st.pid, st.init_start_time = pid, proc_start_time(pid) or 0
        st.status_hint = "created"
        c.save(st)
        if pid_file:
            write_pid_file(pid_file, pid)
        # the steps with which a created init waits for `start`
        started = not any(isinstance(s, (AwaitStart, ExecAwaitingStart)) for s in plan.steps)
        if started:
            _poststart(c)
        return pid, own_console, started
    except BaseException:
        if own_console is not None:
            own_console.close()
        # The error that got us here is the one to report: a failing cleanup
        # step only warns.  If the processes or cgroups could not go, the
        # state dir stays so that `delete --force` can finish the job.
        try:
            _kill_init(c)
            _remove_cgroups(c)
            c.remove_dir()
        except Exception as e:  # noqa: B902
            log.warning(f"cleaning up after the failed create: {e}")
        raise
    finally:
        c.unlock()


def _kill_init(c):
    st = c._state
    if st is not None and st.alive():
        _kill_and_wait(st, signal.SIGKILL)


def _remove_cgroups(c):
    st = c._state
    if st is not None and st.cgroups:
        from pyrunc.cgroups.manager import Manager
        Manager.for_state(st).destroy()


def _kill_and_wait(st, sig, all_procs=True):
    from pyrunc.procs import pids_in_pid_ns, signal_all, wait_all_gone
    if all_procs and st.cgroups:
        from pyrunc.cgroups.manager import Manager
        m = Manager.for_state(st)
        members = m.pids()
        m.kill_all(sig)
        # The init by pid as well if it was not in them (a create killed before
        # the init joined its cgroups) and still is ours; pid 0 is "none yet".
        # Not when it was: whether it is gone yet is a race, and a second
        # kill(2) only sometimes would make delete's steps vary from run to run.
        init = [st.pid] if st.pid not in members and st.alive() else []
        signal_all(init, sig)
        pids = m.pids() + init
        if not wait_all_gone(pids, 10.0):
            raise RuntimeFailure(f"container {st.id}: processes did not exit after SIGKILL")
        return
    pids = pids_in_pid_ns(st.pid) if (all_procs and st.new_pid_ns) else [st.pid]
    if st.pid not in pids:
        pids.append(st.pid)
    signal_all(pids, sig)
    if not wait_all_gone(pids, 10.0):
        raise RuntimeFailure(f"container {st.id}: processes did not exit after SIGKILL")


def start(root, cid):
    c = Container(root, cid).lock()
    try:
        status = c.status()
        if status == "stopped":
            raise StateError("cannot start a container that has stopped")
        if status == "running":
            raise StateError("cannot start an already running container")
        if status != "created":
            raise StateError(f"cannot start a container in the {status} state")
        try:
            fd = posix.open(c.fifo_path, posix.O_WRONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
        except OSError as e:
            raise RuntimeFailure(f"cannot start container {cid}: init is not waiting "
                                 f"({e.strerror.lower()})") from None
        try:
            posix.write(fd, b"0")
        finally:
            posix.close(fd)
        posix.unlink(c.fifo_path)
        _poststart(c)
    finally:
        c.unlock()


def _poststart(c):
    if c.head().has_hooks("poststart"):
        from pyrunc.executor.hooks import run_hooks
        try:
            run_hooks("poststart", _hooks_from_dicts(c.state.hooks("poststart")),
                      c.oci_state())
        except RuntimeFailure as e:
            # runtime-spec: a failing poststart hook is a warning, not a failure
            log.warning(str(e))


def kill(root, cid, sig, all_procs=False):
    c = Container(root, cid).lock()
    try:
        st = c.head()
        status = c.status()
        if status == "stopped":
            if all_procs:
                return
            raise StateError("container not running")
        if all_procs and st.cgroups:
            from pyrunc.cgroups.manager import Manager
            Manager.for_state(st).kill_all(sig)
        elif all_procs and st.new_pid_ns:
            from pyrunc.procs import pids_in_pid_ns, signal_all
            signal_all(pids_in_pid_ns(st.pid), sig)
        else:
            try:
                posix.kill(st.pid, sig)
            except ProcessLookupError:
                raise StateError("container not running") from None
    finally:
        c.unlock()


def delete(root, cid, force=False):
    c = Container(root, cid)
    try:
        c.lock()
    except ContainerNotFound:
        if force:
            c.remove_if_orphan()
            return
        raise
    try:
        status = c.status()
        if status in ("running", "paused") and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {status}")
        st = c.head()
        if status == "stopped" and _rmdir_cgroups(st):
            # the common case (the shim's delete after the init exited): the
            # cgroups went at once, so nobody was left to kill
            if any(d not in st.cgroups.values() for d in st.cgroups_created):
                _remove_cgroups(c)   # parents create made: cgroups.manager decides
        else:
            # a stopped init may leave processes behind when there is no pid
            # namespace; if the cgroups could go at once, there are none
            _kill_and_wait(st, signal.SIGKILL)
            _remove_cgroups(c)
        destroy(c)
    finally:
        c.unlock()


def _rmdir_cgroups(st):
    """rmdir each of a stopped container's cgroups once, no walk, no retry,
    without loading cgroups.manager: True if all are gone.  The kernel refuses
    (EBUSY) while a process or a nested cgroup is in one, so True also says
    that no process was left."""
    for d in dict.fromkeys(st.cgroups.values()):
        try:
            posix.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError:
            return False
    return True


def destroy(c):
    # the state the poststop hooks get is read while it still exists; without
    # hooks (the common case) nothing but the head of state.json is read
    hooks = c.head().has_hooks("poststop")
    if hooks:
        hooks, state = c.state.hooks("poststop"), c.oci_state()
    c.remove_dir()
    if hooks:
        from pyrunc.executor.hooks import run_hooks
        try:
            run_hooks("poststop", _hooks_from_dicts(hooks), state)
        except RuntimeFailure as e:
            log.warning(str(e))
