"""A container's cgroups after create, from what state.json saved.

The saved dict maps a controller ("memory", "cpu", ...), "name=systemd" or
"unified" to the container's directory in that hierarchy (co-mounted
controllers share one); `created` lists the directories create made
(parents included), which destroy removes once the container is gone.
Everything here uses plain file operations and the cheapest standard
modules (posix, not os: see pyrunc/state.py): `kill --all`, `delete`, `pause`
and `state` import it.
"""
import errno
import posix
import select
import time

from pyrunc.errors import RuntimeFailure
# is_frozen: imported from here by others
from pyrunc.state import exists, is_frozen, join, read_bytes, read_text  # noqa: F401

_V1_FREEZER = "freezer"


def _read(path):
    return read_bytes(path).decode()


_try_read = read_text


def _write(path, value):
    fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
    try:
        posix.write(fd, value.encode())
    finally:
        posix.close(fd)


def _isdir(path):
    try:
        return posix.stat(path).st_mode & 0o170000 == 0o040000   # S_ISDIR
    except (OSError, ValueError):
        return False


def _tree(top):
    """top and every directory below it, parents before children (os.walk's
    order, without os).  Gone or unreadable directories are left out."""
    out, todo = [], [top]
    while todo:
        d = todo.pop()
        try:
            with posix.scandir(d) as it:
                subdirs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        out.append(d)
        todo.extend(reversed(subdirs))
    return out


class Manager:
    def __init__(self, paths, created=()):
        self.paths = dict(paths or {})
        self.created = list(created or ())

    @classmethod
    def from_state(cls, paths, created=()):
        return cls(paths, created)

    @classmethod
    def for_state(cls, state):
        """From a pyrunc.state.State (its `cgroups` and `cgroups_created`, when present)."""
        return cls(getattr(state, "cgroups", None) or {},
                   getattr(state, "cgroups_created", None) or ())

    # --- layout --------------------------------------------------------------
    @property
    def v2(self):
        """cgroup v2 only: the one directory is in the unified tree."""
        return bool(self.paths) and set(self.paths) == {"unified"}

    def dirs(self):
        """Each directory once, in saved order."""
        return list(dict.fromkeys(self.paths.values()))

    def path(self, controller):
        return self.paths.get("unified" if self.v2 else controller)

    def exists(self):
        return any(_isdir(d) for d in self.dirs())

    # --- processes ---------------------------------------------------------------
    def pids(self):
        """Every pid in the container's cgroups (nested cgroups included), sorted."""
        found = set()
        for d in self.dirs():
            for dirpath in _tree(d):
                found.update(int(p) for p in _try_read(join(dirpath, "cgroup.procs")).split())
        return sorted(found)

    def join(self, pid):
        """Move pid into every one of the container's cgroups (exec)."""
        for d in self.dirs():
            try:
                _write(join(d, "cgroup.procs"), str(pid))
            except OSError as e:
                raise RuntimeFailure(f"cannot join cgroup {d}: {_text(e)}") from None

    def kill_all(self, sig):
        """Signal every process, frozen meanwhile so that none forks past the signal.

        After SIGKILL the cgroup is thawed even if it was paused before: a
        frozen v1 task cannot die.  Other signals leave a paused container paused.
        """
        import _signal   # the C module: `signal` imports enum (~3 ms a call)
        kill = sig == _signal.SIGKILL
        if self.v2 and kill and exists(self._f("unified", "cgroup.kill")):
            _write(self._f("unified", "cgroup.kill"), "1")
            return
        was_frozen = self.is_frozen()
        if not was_frozen and not self.pids():
            # nobody to signal (delete of a stopped container): no member can
            # fork a new one, so skip the freeze and thaw round trips
            return
        froze = False
        if self.can_freeze() and not was_frozen:
            try:
                self.freeze()
                froze = True
            except (RuntimeFailure, OSError):
                # signal them anyway; OSError: a create killed before it made
                # the freezer cgroup left only the path in state.json
                pass
        try:
            for pid in self.pids():
                try:
                    posix.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if froze or (kill and was_frozen):
                self.thaw()

    # --- freezer -------------------------------------------------------------------
    def _f(self, controller, name):
        return join(self.path(controller), name)

    def can_freeze(self):
        return (self.v2 and exists(self._f("unified", "cgroup.freeze"))) or \
            (_V1_FREEZER in self.paths)

    def is_frozen(self):
        return is_frozen(self.paths)

    def freeze(self, timeout=10.0):
        if not self.can_freeze():
            raise RuntimeFailure("cannot pause: the freezer cgroup controller is not available")
        if self.v2:
            self._freeze_v2("1", timeout)
        else:
            self._freeze_v1("FROZEN", timeout)

    def thaw(self, timeout=10.0):
        if not self.can_freeze():
            raise RuntimeFailure("cannot resume: the freezer cgroup controller is not available")
        if self.v2:
            self._freeze_v2("0", timeout)
        else:
            self._freeze_v1("THAWED", timeout)

    def _freeze_v1(self, want, timeout):
        path = self._f(_V1_FREEZER, "freezer.state")
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            # FREEZING can stall on a task in an uninterruptible sleep: write
            # again until every task is frozen, as often as it takes
            _write(path, want)
            state = _read(path).strip()
            if state == want:
                return
            if time.monotonic() > deadline:
                if want == "FROZEN":
                    _write(path, "THAWED")
                raise RuntimeFailure(f"unable to {'freeze' if want == 'FROZEN' else 'thaw'} "
                                     f"cgroup {path.rsplit('/', 1)[0]}: still {state}")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _freeze_v2(self, want, timeout):
        _write(self._f("unified", "cgroup.freeze"), want)
        events = self._f("unified", "cgroup.events")
        frozen = "frozen " + want
        fd = posix.open(events, posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            poll = select.poll()
            poll.register(fd, select.POLLPRI)
            deadline = time.monotonic() + timeout
            while True:
                if frozen in posix.pread(fd, 4096, 0).decode().splitlines():
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    if want == "1":
                        _write(self._f("unified", "cgroup.freeze"), "0")
                    raise RuntimeFailure(f"unable to {'freeze' if want == '1' else 'thaw'} "
                                         f"cgroup {self.path('unified')}: timed out")
                poll.poll(min(left, 0.1) * 1000)   # cgroup.events signals changes as POLLPRI
        finally:
            posix.close(fd)

    # --- update, stats, events ---------------------------------------------------------
    def update(self, resources):
        """Apply a LinuxResources dict to the running container (0/absent = unchanged)."""
        from pyrunc.cgroups.update import apply
        apply(self, resources)

    def stats(self):
        """runc's `events --stats` data object."""
        from pyrunc.cgroups.stats import collect
        return collect(self)

    def oom_events(self):
        """An OomWatch: a pollable fd() and count() of new OOM kills since the last call."""
        from pyrunc.cgroups.oom import OomWatch
        return OomWatch(self)

    # --- removal ---------------------------------------------------------------------------
    def destroy(self, timeout=5.0):
        """rmdir the container's cgroups (and nested ones) and the parents create made.

        Retries while the last processes leave; already-gone is fine.  A parent
        another container still uses stays.
        """
        deadline = time.monotonic() + timeout
        failed = []
        for d in self.dirs():
            err = _remove_tree(d, deadline)
            if err:
                failed.append(f"{d}: {err}")
        leaves = set(self.dirs())
        for d in sorted(set(self.created) - leaves, key=lambda p: p.count("/"), reverse=True):
            try:
                posix.rmdir(d)
            except OSError as e:
                if e.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EBUSY, errno.EEXIST):
                    failed.append(f"{d}: {_text(e)}")
        if failed:
            raise RuntimeFailure("unable to remove cgroups: " + "; ".join(failed))


def _text(e):
    from pyrunc.errors import oserror_text
    return oserror_text(e)


def _remove_tree(top, deadline):
    """rmdir top and every cgroup below it, deepest first; None or the error text."""
    delay = 0.005
    while True:
        try:
            posix.rmdir(top)   # the common case: no nested cgroup, nobody left
            return None
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                return _text(e)
            busy = e
        for d in reversed(_tree(top)):   # children before their parents
            try:
                posix.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    return _text(e)
                busy = e
        if not _isdir(top):
            return None
        if time.monotonic() > deadline:
            return _text(busy)
        time.sleep(delay)   # processes are still leaving
        delay = min(delay * 2, 0.1)
