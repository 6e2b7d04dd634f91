"""The channel between `pyrunc create` and the processes it forks.

A SOCK_SEQPACKET socketpair: one JSON object per datagram, so a message is
never split or merged.  EOF means the other side died.

`_socket` (the C module) is enough for that, and cheap: `socket` imports
enum and selectors, ~2 ms that every create and exec would pay.
"""
import _socket

from pyrunc import fastjson
from pyrunc.errors import RuntimeFailure

MAX = 1 << 16


class Channel:
    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def pair(cls):
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)   # CLOEXEC
        return cls(a), cls(b)

    def send(self, kind, **fields):
        fields["t"] = kind
        self.sock.send(fastjson.dumps(fields).encode())

    def recv(self):
        data = self.sock.recv(MAX)
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
        return self.sock.fileno()

    def close(self):
        self.sock.close()
