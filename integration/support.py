"""Small helpers the client test modules share."""
import json
import os
import select
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# pid 1 of the container: exits 42 on SIGTERM (pid 1 gets only the signals
# it handles), prints "ready" once the trap is set.
TRAP_TERM = 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'
# ignores SIGTERM: only SIGKILL ends it
IGNORE_TERM = 'trap "" TERM; echo ready; while :; do sleep 0.05; done'
# pid 1 itself grows to ~300 MiB (a command substitution is held in the
# shell's memory): the OOM killer picks it, so the container exits 137.
# Bounded, so that a missing limit costs 300 MiB, not the host.
EAT_MEMORY = 'x=$(head -c 300m /dev/zero | tr "\\0" a); echo survived'

# (command, words the error must have): what runc says, and what docker and
# podman turn into exit code 127
MISSING = [("/no/such/binary", "no such file or directory"),
           ("nosuchcmd", "executable file not found in $PATH")]


def pyrunc_path():
    path = os.environ.get("PYRUNC") or str(REPO / ".venv" / "bin" / "pyrunc")
    return os.path.abspath(path)


def unique(prefix):
    return f"{prefix}-{os.urandom(4).hex()}"


class Foreground:
    """A client command in the foreground (`ctr run`, `docker run`), waited on
    from the test while other commands act on its container."""

    def __init__(self, argv, env=None, cwd=None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=cwd)
        self.out = b""

    def wait_for_output(self, text, timeout=20.0):
        """Read the client's stdout until `text` appears in it."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.argv}: no {text!r} after {timeout}s in {self.out!r}")
            if self._readable(min(left, 0.2)):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:      # the client exited without printing it
                    code, _, err = self.wait(5.0)
                    raise AssertionError(f"{self.argv}: exited {code} before {text!r}; "
                                         f"stdout {self.out!r}, stderr {err!r}")
                self.out += chunk

    def _readable(self, timeout):
        return bool(select.select([self.proc.stdout], [], [], timeout)[0])

    def wait(self, timeout=30.0):
        """(exit code, stdout, stderr); kills the client if it hangs."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except Exception:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"{self.argv} still running after {timeout}s; "
                                 f"stderr {err!r}") from None
        return self.proc.returncode, (self.out + out).decode(errors="replace"), \
            err.decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def state_written_by(state_dir):
    """Which runtime wrote the state.json in a runtime root's container dir:
    proof that the client drove the runtime the test named."""
    with open(os.path.join(state_dir, "state.json")) as f:
        d = json.load(f)
    return "runc" if "init_process_pid" in d else "pyrunc" if "status_hint" in d else None


def memory_cgroup(pid):
    """The process's cgroup in the v1 memory hierarchy (or the v2 path)."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in lines:
        if "memory" in controllers.split(","):
            return path
    return next((path for hid, _, path in lines if hid == "0"), None)


def cgroups_path(config_json):
    with open(config_json) as f:
        return json.load(f)["linux"]["cgroupsPath"]


def cgroup_file(config_json, controller, name):
    """A file of the container's v1 cgroup, where cgroupsPath says, or None."""
    path = os.path.join("/sys/fs/cgroup", controller, cgroups_path(config_json).lstrip("/"), name)
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def memory_limit(config_json):
    value = cgroup_file(config_json, "memory", "memory.limit_in_bytes")
    return int(value) if value is not None else None
