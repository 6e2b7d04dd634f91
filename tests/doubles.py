"""A recording stand-in for pyrunc.syscalls.

Every call is appended to `.calls` as (name, args) and succeeds; calls that
return an fd get a fresh fake fd number.  Constants (C.MS_BIND, ...) and flags
are the real ones, so tests compare against the same values the kernel sees.
Set `fail[name] = errno` to make a call raise OSError.
"""
import errno as _errno
import os

from pyrunc import syscalls as _real

FD_RETURNING = {"open", "openat2", "open_tree", "sealed_memfd"}


class RecordingSys:
    C = _real.C
    O_PATH = _real.O_PATH
    O_CLOEXEC = _real.O_CLOEXEC
    O_DIRECTORY = _real.O_DIRECTORY
    O_NOFOLLOW = _real.O_NOFOLLOW

    def __init__(self):
        self.calls = []
        self.fail = {}
        self._next_fd = 100
        self.fstat_result = None   # what fstat returns; tests set it when they need to

    def __getattr__(self, name):
        if name.startswith("_") or not hasattr(_real, name):
            raise AttributeError(name)

        def call(*args, **kwargs):
            self.calls.append((name, args) if not kwargs else (name, args, kwargs))
            if name in self.fail:
                e = self.fail[name]
                raise OSError(e, os.strerror(e))
            if name in FD_RETURNING:
                self._next_fd += 1
                return self._next_fd
            if name == "fstat":
                return self.fstat_result
            return None
        return call

    def names(self):
        return [c[0] for c in self.calls]

    def of(self, name):
        return [c for c in self.calls if c[0] == name]


__all__ = ["RecordingSys", "_errno"]
