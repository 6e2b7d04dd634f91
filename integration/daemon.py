"""A daemon the session starts (containerd, dockerd) and stops by its pid,
and the command runner the client wrappers share."""
import os
import subprocess
import time

RUNC = "/usr/sbin/runc"


def run(argv, *, timeout=60, env=None, input=None, check=False, cwd=None):
    """Run a client command; output captured as text.  A command that hangs
    past `timeout` is killed (subprocess kills it by pid) and reported."""
    try:
        stdin = None if input is not None else subprocess.DEVNULL
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                           input=input, cwd=cwd, stdin=stdin)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}\n"
                             f"stdout: {e.stdout}\nstderr: {e.stderr}") from None
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}\n"
                             f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


class Daemon:
    """One long-running process with its output in a log file."""

    def __init__(self, name, argv, log_path, env=None):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.log = open(log_path, "ab")
        # own session: a Ctrl-C to pytest must not reach the daemon first
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                     cwd=os.path.dirname(log_path))

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, ready, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode} at start:\n"
                                   + self.tail())
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n" + self.tail())

    def tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=20.0):
        """SIGTERM, then SIGKILL after `timeout`; reaps it (it is our child)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def socket_ready(path):
    def ready():
        return os.path.exists(path)
    return ready


def runtime_entries(root):
    """Container state dirs a runtime left in `root` (recursing one level for
    containerd's per-namespace roots is the caller's job)."""
    try:
        return sorted(os.listdir(root))
    except FileNotFoundError:
        return []

