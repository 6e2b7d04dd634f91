"""podman 4.3 + conmon in front of pyrunc's faults: what podman reports and
what is left after it (and then `podman rm -f`) cleaned up.

podman gives the runtime almost none of its environment (conmon and the
runtime calls podman makes itself see a fixed list of variables), so the
switches travel as global runtime flags: `podman --runtime-flag
faults-from-annotations --runtime-flag trace=FILE ...` puts
`--faults-from-annotations --trace=FILE` in front of every pyrunc call this
podman command makes, conmon's create included.  The rule is an
`--annotation`; podman parses that flag's value as CSV, so it is quoted.
"""
import os
import subprocess
import tempfile
import time

import pytest

from integration import hostenv
from integration.client_podman import IMAGE
from integration.daemon import run
from integration.faults_support import Trace, kill_hung
from integration.support import unique

ANNOTATION = "org.pyrunc.fault.test"
SLEEPER = ("sh", "-c", "while :; do sleep 0.05; done")


@pytest.fixture
def client(podman):
    return podman


@pytest.fixture(scope="module")
def trace_path(session_dir):
    d = os.path.join(session_dir, "faults-podman")
    os.makedirs(d, exist_ok=True)
    # no environment reaches pyrunc: nth counters go to the default dir; ours
    # (keyed by rule and container id) are removed afterwards
    counters = os.path.join(tempfile.gettempdir(), f"pyrunc-faults-{os.geteuid()}")
    before = set(os.listdir(counters)) if os.path.isdir(counters) else None
    yield os.path.join(d, "trace.jsonl")
    if os.path.isdir(counters):
        for name in set(os.listdir(counters)) - (before or set()):
            os.unlink(os.path.join(counters, name))
        if before is None:
            os.rmdir(counters)


@pytest.fixture
def trace(trace_path):
    return Trace(trace_path)


def csv_quoted(value):
    return '"' + value.replace('"', '""') + '"'


def argv(p, trace_path, *args):
    return p.argv("--runtime-flag", "faults-from-annotations",
                  "--runtime-flag", f"trace={trace_path}", *args, runtime="pyrunc")


def run_argv(p, trace_path, name, rule, detach=False):
    cmd = SLEEPER if detach else ("sh", "-c", "echo hi; exit 5")
    return argv(p, trace_path, "run", "-d" if detach else "--rm", "--name", name,
                "--annotation", csv_quoted(f"{ANNOTATION}={rule}"), *p.run_flags(), IMAGE,
                *cmd)


def podman_run(p, trace_path, name, rule, detach=False):
    return run(run_argv(p, trace_path, name, rule, detach), env=p.env, cwd=p.cwd, timeout=90)


def pod(p, trace_path, *args):
    return run(argv(p, trace_path, *args), env=p.env, cwd=p.cwd, timeout=90)


def remove(p, trace_path, name):
    return pod(p, trace_path, "rm", "-f", "-t", "0", name)


def ids_in(trace):
    return {r["id"] for r in trace.records()}


def new_id(trace, before):
    """The container id pyrunc saw for the test's container (podman's is 64 hex digits)."""
    (cid,) = ids_in(trace) - before
    return cid


def commands(trace, cid):
    return [(r["command"], r["exit"], r["end"]) for r in trace.of(cid)]


def test_fail_create_at_a_step(podman, trace_path, trace):
    before = ids_in(trace)
    r = podman_run(podman, trace_path, unique("pf"),
                   "fail cmd=create step=ResolveExecutable "
                   'msg="exec: \\"x\\": executable file not found in $PATH"')
    # podman maps runc's words to its exit codes: not found -> 127
    assert r.returncode == 127
    assert ('Error: pyrunc: unable to start container process: exec: "x": executable file '
            'not found in $PATH: OCI runtime attempted to invoke a command that was not found'
            ) in r.stderr
    cid = new_id(trace, before)
    assert commands(trace, cid) == [("create", 1, "exit"), ("delete", 0, "exit")]
    assert hostenv.wait_for(lambda: not podman.leftovers(), 10.0), podman.leftovers()


def test_init_dies_at_exec(podman, trace_path, trace):
    r = podman_run(podman, trace_path, unique("pi"), "die cmd=start step=Exec code=7")
    assert (r.returncode, r.stdout) == (7, "")


def test_crash_mid_mounts(podman, trace_path, trace):
    before, name = ids_in(trace), unique("pc")
    r = podman_run(podman, trace_path, name, "crash cmd=create step=MountFs nth=3", detach=True)
    try:
        assert r.returncode == 126
        assert "container create failed (no logs from conmon)" in r.stderr
        cid = new_id(trace, before)
        assert commands(trace, cid) == [("create", None, "crash"), ("delete", 0, "exit")]
        # conmon deleted pyrunc's half-made container; podman keeps its record
        assert podman.inspect(name)["State"]["Status"] == "created"
    finally:
        assert remove(podman, trace_path, name).returncode == 0


def test_hang_start_until_pyrunc_is_killed(podman, trace_path, trace):
    before, name = ids_in(trace), unique("ph")
    p = subprocess.Popen(run_argv(podman, trace_path, name, "hang cmd=start"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=podman.env, cwd=podman.cwd)
    try:
        time.sleep(2.0)
        assert p.poll() is None           # podman waits for `start` as long as it takes
        cid = new_id(trace, before)
        kill_hung(cid, "start")
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
        p.communicate()
    assert p.returncode == 126
    assert f"start {cid}` failed: signal: terminated" in err
    start = [r for r in trace.of(cid) if r["command"] == "start"][0]
    assert (start["end"], start["signal"]) == ("hang", "SIGTERM")
    assert hostenv.wait_for(lambda: not podman.leftovers(), 15.0), podman.leftovers()


def test_fail_kill_once(podman, trace_path, trace):
    name = unique("pk")
    assert podman_run(podman, trace_path, name, "fail cmd=kill nth=1 msg=kill-refused",
                      detach=True).returncode == 0
    try:
        r = pod(podman, trace_path, "kill", name)
        assert r.returncode == 125 and "kill-refused" in r.stderr, r.stderr
        assert podman.inspect(name)["State"]["Status"] == "running"
        assert pod(podman, trace_path, "kill", name).returncode == 0
    finally:
        assert remove(podman, trace_path, name).returncode == 0


def test_bad_pid_file(podman, trace_path, trace):
    """conmon does not check the pid file: podman runs a container whose pid
    it takes for 0, and `rm -f` fails once; the container is killed all the
    same and a second `rm -f` removes it."""
    name = unique("pp")
    r = podman_run(podman, trace_path, name, "badpid cmd=create", detach=True)
    try:
        assert r.returncode == 0, r.stderr
        state = podman.inspect(name)["State"]
        assert (state["Status"], state["Pid"]) == ("running", 0)
        r = remove(podman, trace_path, name)
        assert r.returncode == 125
        assert "could not be stopped: given PIDs did not die within timeout" in r.stderr
        assert podman.inspect(name)["State"]["Status"] == "exited"
    finally:
        assert remove(podman, trace_path, name).returncode == 0
    assert hostenv.wait_for(lambda: not podman.leftovers(), 15.0), podman.leftovers()


def test_bad_log_line_then_stderr_is_shown(podman, trace_path, trace):
    r = podman_run(podman, trace_path, unique("pl"),
                   "fail cmd=create msg=the-real-reason; badlog cmd=create")
    assert r.returncode == 126
    # conmon falls back to the runtime's stderr when the log does not parse
    assert "the-real-reason" in r.stderr, r.stderr
