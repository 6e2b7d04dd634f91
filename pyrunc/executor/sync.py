"""The channel between `pyrunc create` and the processes it forks.

A SOCK_SEQPACKET socketpair: one JSON object per datagram, so a message is
never split or merged.  EOF means the other side died.

Plain fds, read and written with posix: the pair comes from syscalls, so
create needs no socket module at all (`socket` imports enum and selectors,
~2 ms; even the built-in `_socket` is ~0.1 ms to set up).
"""
import posix

from pyrunc import fastjson
from pyrunc.errors import RuntimeFailure

MAX = 1 << 16


class Channel:
    def __init__(self, fd):
        self.fd = fd

    @classmethod
    def pair(cls):
        from pyrunc import syscalls
        a, b = syscalls.seqpacket_pair()   # close-on-exec
        return cls(a), cls(b)

    def send(self, kind, **fields):
        fields["t"] = kind
        posix.write(self.fd, fastjson.dumps(fields).encode())

    def recv(self):
        data = posix.read(self.fd, MAX)
        if not data:
            return None
        return fastjson.loads(data)

    def expect(self, kind):
        msg = self.recv()
        if msg is None:
            raise RuntimeFailure("runtime went away during container setup")
        if msg["t"] != kind:
            raise RuntimeFailure(f"sync: expected {kind}, got {msg['t']}")
        return msg

    def fileno(self):
        return self.fd

    def close(self):
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            posix.close(fd)
