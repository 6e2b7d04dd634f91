"""Drive a client that wants a terminal (`docker run -t`, `ctr run -t`,
`podman run -t`) through a pseudo-terminal from the test."""
import os
import pty
import select
import signal
import subprocess
import time
from dataclasses import dataclass


@dataclass
class PtyResult:
    returncode: int
    output: str        # everything the client wrote to its terminal, without CRs


def run_in_pty(argv, *, script=(), timeout=30.0, env=None, cols=80, rows=24, cwd=None):
    """Run argv with a new pty as its stdin/stdout/stderr and controlling tty.

    script: (wait_for, send) pairs: once `wait_for` (str, or None for "now")
    has appeared in the output, `send` is written to the terminal.
    The process is killed (by pid) if it runs past `timeout`.
    """
    import fcntl
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def child_setup():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                            preexec_fn=child_setup, close_fds=True)
    os.close(slave)
    out = b""
    steps = list(script)
    deadline = time.monotonic() + timeout
    try:
        while True:
            while steps and (steps[0][0] is None or steps[0][0].encode() in out):
                _, send = steps.pop(0)
                os.write(master, send.encode())
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{argv[:3]}... still running after {timeout}s; "
                                   f"output so far: {out.decode(errors='replace')!r}")
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:        # EIO: every slave fd is closed
                    data = b""
                if not data:
                    break
                out += data
            elif proc.poll() is not None and not steps:
                # exited, but something (a leaked slave) keeps the pty open
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except BaseException:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    finally:
        os.close(master)
    return PtyResult(code, out.decode(errors="replace").replace("\r", ""))
