"""What the fault and trace tests share: a containerd whose environment turns
pyrunc's trace and fault injection on, and helpers to read what happened.

containerd passes its environment to the runc shim, and the shim to the
runtime, so starting containerd with PYRUNC_TRACE / PYRUNC_FAULTS /
PYRUNC_FAULTS_FROM_ANNOTATIONS reaches every pyrunc call it makes -- the way a
user would turn them on (a systemd drop-in with Environment=...).  The rules
file named by PYRUNC_FAULTS starts empty; tests write rules into it, or pass
them per container as `org.pyrunc.fault.*` annotations.
"""
import json
import os
import signal
import time
from contextlib import contextmanager

from integration import hostenv


@contextmanager
def environ(**values):
    """os.environ with `values` set while a daemon is started (Popen inherits it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def instrumented_env(directory):
    """The pyrunc switches for a client whose files live in `directory`."""
    trace = os.path.join(directory, "trace.jsonl")
    rules = os.path.join(directory, "faults.rules")
    open(rules, "a").close()
    return {"PYRUNC_TRACE": trace, "PYRUNC_FAULTS": rules,
            "PYRUNC_FAULTS_FROM_ANNOTATIONS": "1",
            "PYRUNC_FAULTS_STATE": os.path.join(directory, "fault-counters")}


def start_containerd(session_dir, runtimes, busybox_rootfs, name):
    """A second private containerd (own root, state and socket) with the switches on."""
    from integration.client_containerd import Containerd
    base = os.path.join(session_dir, name)
    os.makedirs(base, exist_ok=True)
    env = instrumented_env(base)
    with environ(**env):
        c = Containerd(base, runtimes)
    c.pyrunc_env = env
    try:
        c.import_image(busybox_rootfs, base)
    except BaseException:
        c.close()
        raise
    return c


class Trace:
    """The trace file a client's pyrunc calls append to."""

    def __init__(self, path):
        self.path = path

    def records(self):
        try:
            with open(self.path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def of(self, cid):
        return [r for r in self.records() if r.get("id") == cid]


def write_rules(env, text):
    with open(env["PYRUNC_FAULTS"], "w") as f:
        f.write(text)


def pyrunc_processes(cid):
    """(pid, cmdline) of every pyrunc process whose command line names cid."""
    return [(pid, line) for pid, line in hostenv.processes_mentioning(cid)
            if "pyrunc" in line and "containerd-shim" not in line and "conmon" not in line]


def kill_hung(cid, command, timeout=20.0):
    """SIGTERM the hung `pyrunc <command> ... cid` (found by its command line,
    killed by its pid); returns its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, line in pyrunc_processes(cid):
            if f" {command} " in f" {line} ":
                os.kill(pid, signal.SIGTERM)
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no hung pyrunc {command} for {cid}")
