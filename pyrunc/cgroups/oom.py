"""OOM-kill notifications for `events`.

v1: an eventfd registered on memory.oom_control through cgroup.event_control;
the kernel bumps it on every OOM in the cgroup, and once more when the cgroup
is removed.  v2: memory.events, whose oom_kill counter we compare; the file
signals every change to poll() as POLLPRI.
"""
import os
import select

from pyrunc.errors import RuntimeFailure, oserror_text


class OomWatch:
    """fileno() and poll_mask for a poll loop; count() = OOM kills since the last call."""

    def __init__(self, manager):
        self.dir = manager.path("memory")
        self.v2 = manager.v2
        self._fd = -1
        if not self.dir:
            raise RuntimeFailure("the memory cgroup controller is not available")
        try:
            if self.v2:
                self._fd = os.open(os.path.join(self.dir, "memory.events"),
                                   os.O_RDONLY | os.O_CLOEXEC)
                self.poll_mask = select.POLLPRI
                self._seen = self._oom_kills()
            else:
                self._register_v1()
                self.poll_mask = select.POLLIN
        except OSError as e:
            self.close()
            raise RuntimeFailure(f"cannot watch for OOM events in {self.dir}: "
                                 f"{oserror_text(e)}") from None

    def _register_v1(self):
        self._fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        ctl = os.open(os.path.join(self.dir, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            fd = os.open(os.path.join(self.dir, "cgroup.event_control"),
                         os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, f"{self._fd} {ctl}".encode())
            finally:
                os.close(fd)
        finally:
            os.close(ctl)   # the kernel holds its own reference from here on

    def _oom_kills(self):
        text = os.pread(self._fd, 4096, 0).decode()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def fileno(self):
        return self._fd

    def gone(self):
        """The cgroup was removed (the container is gone)."""
        return not os.path.isdir(self.dir)

    def count(self):
        if self.v2:
            now = self._oom_kills()
            new, self._seen = max(0, now - self._seen), now
            return new
        try:
            n = int.from_bytes(os.read(self._fd, 8), "little")
        except BlockingIOError:
            return 0
        # the removal of the cgroup wakes the eventfd too: that is no OOM
        return 0 if self.gone() else n

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
