"""Take the kernel's cgroup-migration wait off create's critical path.

Moving a process between cgroups takes cgroup_threadgroup_rwsem for writing,
and the first such move after a quiet spell waits for an RCU grace period
while the lock switches to writer mode: 7-20 ms on a 2-vCPU VM, more than
the rest of JoinCgroup's work by far.  Moves that follow within about one
grace period are fast (tens of microseconds).

start() makes a move that changes nothing -- this process into the cgroup it
is already in (writing "0" to cgroup.procs means "the writer") -- on a
thread, at the start of create/exec.  The grace period then passes while the
main thread loads the config, plans and imports, and JoinCgroup finds the
lock already in writer mode (or waits only for the rest of the same grace
period).  Failures (no cgroupfs, rootless, ...) are ignored: without
priming, the join just waits as it would have.

Nobody waits for the thread: JoinCgroup's own write is what waits, in the
kernel.  launch() may fork while the thread is still blocked in write(2):
it holds no lock then (no GIL, no import lock, nothing of libc's), so the
child, which gets only the forking thread, inherits nothing half-done; the
child never looks at the thread's lock.
"""
import _thread
import os

_running = []   # the lock the thread releases when done (for wait(): tests)


def own_procs_file(host):
    """cgroup.procs of the cgroup this process is in (v2 if mounted, else the first v1),
    or None when that cgroup is not below the mount (own_dir() would then name
    the mount's root, and the write would really move us)."""
    if host.v2_mount:
        if _inside(host.v2_own, host.v2_root):
            return os.path.join(host.v2_own_dir(), "cgroup.procs")
    elif host.v1 and _inside(host.v1[0].own, host.v1[0].root):
        return os.path.join(host.v1[0].own_dir(), "cgroup.procs")
    return None


def _inside(own, root):
    return root in ("", "/") or own == root or own.startswith(root.rstrip("/") + "/")


def start(host=None):
    """Begin the no-op move on a thread (once per process)."""
    if _running:
        return
    try:
        if host is None:
            from pyrunc.cgroups.host import probe
            host = probe()
        path = own_procs_file(host)
    except OSError:
        path = None
    if path is None:
        return
    done, started = _thread.allocate_lock(), _thread.allocate_lock()
    done.acquire()
    started.acquire()
    _running.append(done)
    _thread.start_new_thread(_move_self, (path, done, started))
    # Without this the thread would wait for the GIL until our next blocking
    # call or the 5 ms switch interval; waiting on the lock hands it over now.
    started.acquire()


def wait():
    """Until the thread start() began is done (at once if there is none).
    Not needed before a fork (see above); tests use it."""
    if _running:
        done = _running[0]
        done.acquire()
        done.release()


def _move_self(path, done, started):
    started.release()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    except OSError:
        pass
    finally:
        done.release()

