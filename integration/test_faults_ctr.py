"""containerd's runc shim (ctr 1.6) in front of each kind of pyrunc fault:
what ctr reports and what is left once containerd (and then the client) has
cleaned up.  The README's table "what containerd does when the runtime ..."
is these tests' findings.

Faults reach pyrunc the way a user would send them: containerd runs with
PYRUNC_FAULTS_FROM_ANNOTATIONS=1 (and PYRUNC_TRACE) in its environment, which
the shim passes on, and each container carries its rule as an
`org.pyrunc.fault.*` annotation (`ctr run --annotation`).
"""
import subprocess
import time

import pytest

from integration import hostenv
from integration.client_containerd import IMAGE
from integration.daemon import run
from integration.faults_support import Trace, kill_hung, start_containerd
from integration.support import unique

ANNOTATION = "org.pyrunc.fault.test"
SLEEPER = ("sh", "-c", "while :; do sleep 0.05; done")


@pytest.fixture(scope="module")
def fctr(session_dir, runtimes, busybox_rootfs):
    c = start_containerd(session_dir, runtimes, busybox_rootfs, "faults-ctr")
    yield c
    problems = c.close()
    if problems:
        pytest.fail("left on the host (now removed):\n  " + "\n  ".join(problems))


@pytest.fixture
def client(fctr):
    return fctr


@pytest.fixture
def trace(fctr):
    return Trace(fctr.pyrunc_env["PYRUNC_TRACE"])


def run_argv(c, cid, rule, cmd=("sh", "-c", "echo hi; exit 5"), detach=False):
    mode = "-d" if detach else "--rm"
    return c.argv("run", mode, "--annotation", f"{ANNOTATION}={rule}",
                  *c.runtime_flags("pyrunc"), IMAGE, cid, *cmd)


def ctr_run(c, cid, rule, detach=False, timeout=60):
    cmd = SLEEPER if detach else ("sh", "-c", "echo hi; exit 5")
    return run(run_argv(c, cid, rule, cmd, detach), timeout=timeout)


def left(c, cid):
    """What the test's container left behind (containerd objects, pyrunc state, ...)."""
    return [x for x in c.leftovers() if cid in x]


def client_cleanup(c, cid):
    """What a user does after a failure: delete the task (SIGKILL first), then the container."""
    c.ctr("task", "delete", "-f", cid)
    c.ctr("container", "delete", cid)


def commands(trace, cid):
    return [(r["command"], r["exit"], r["end"]) for r in trace.of(cid)]


# --- fail -----------------------------------------------------------------------------------

def test_fail_create_at_a_step(fctr, trace):
    cid = unique("ff")
    r = ctr_run(fctr, cid, 'fail cmd=create step=PivotRoot msg="pivot_root: permission denied"')
    assert r.returncode == 1
    assert ("ctr: failed to create shim task: OCI runtime create failed: unable to start "
            "container process: pivot_root: permission denied: unknown") in r.stderr
    # the shim deleted what create left; `ctr run --rm` removed the container
    assert hostenv.wait_for(lambda: not left(fctr, cid), 10.0), left(fctr, cid)
    assert commands(trace, cid) == [("create", 1, "exit"), ("delete", 0, "exit")]
    assert trace.of(cid)[1]["argv"][-3:] == ["delete", "--force", cid]


def test_fail_start_leaves_a_created_task(fctr, trace):
    cid = unique("fs")
    r = ctr_run(fctr, cid, "fail cmd=start code=3 msg=start-refused")
    assert r.returncode == 1
    assert "ctr: OCI runtime start failed: start-refused: unknown" in r.stderr
    # neither the shim nor `ctr run --rm` cleans up after a failed start
    assert fctr.task_status(cid) == "CREATED"
    assert f"ctr task {cid}" in left(fctr, cid)
    client_cleanup(fctr, cid)
    assert hostenv.wait_for(lambda: not left(fctr, cid), 10.0), left(fctr, cid)
    assert commands(trace, cid)[:2] == [("create", 0, "exit"), ("start", 3, "exit")]


def test_fail_kill_once_then_it_works(fctr, trace):
    cid = unique("fk")
    assert ctr_run(fctr, cid, "fail cmd=kill nth=1 msg=kill-refused", detach=True).returncode == 0
    try:
        r = fctr.ctr("task", "kill", "-s", "KILL", cid)
        assert r.returncode == 1 and "kill-refused" in r.stderr, r.stderr
        assert fctr.task_status(cid) == "RUNNING"
        assert fctr.ctr("task", "kill", "-s", "KILL", cid).returncode == 0
        assert hostenv.wait_for(lambda: fctr.task_status(cid) == "STOPPED", 10.0)
    finally:
        client_cleanup(fctr, cid)


def test_fail_delete_once_then_a_retry_works(fctr, trace):
    cid = unique("fd")
    assert ctr_run(fctr, cid, "fail cmd=delete nth=1 msg=delete-refused",
                   detach=True).returncode == 0
    try:
        assert fctr.ctr("task", "kill", "-s", "KILL", cid).returncode == 0
        assert hostenv.wait_for(lambda: fctr.task_status(cid) == "STOPPED", 10.0)
        r = fctr.ctr("task", "delete", cid)
        assert r.returncode == 1 and "delete-refused" in r.stderr, r.stderr
        # containerd keeps the stopped task; deleting it again works
        assert fctr.task_status(cid) == "STOPPED"
        assert fctr.ctr("task", "delete", cid).returncode == 0
        assert left(fctr, cid) == [f"ctr container {cid}"]
    finally:
        client_cleanup(fctr, cid)
    assert [c for c, _, _ in commands(trace, cid)][-2:] == ["delete", "delete"]


def test_fail_exec_at_a_step(fctr, trace):
    cid = unique("fx")
    assert ctr_run(fctr, cid, "fail cmd=exec step=ExecSpawn msg=exec-refused",
                   detach=True).returncode == 0
    try:
        r = fctr.exec("--exec-id", "e1", cid, "true")
        assert r.returncode == 1
        assert ("OCI runtime exec failed: unable to start container process: exec-refused"
                in r.stderr), r.stderr
        assert fctr.task_status(cid) == "RUNNING"
    finally:
        client_cleanup(fctr, cid)
    assert ("exec", 1, "exit") in commands(trace, cid)


# --- delay, hang ----------------------------------------------------------------------------

def test_delay_create(fctr, trace):
    cid = unique("fy")
    t = time.monotonic()
    r = ctr_run(fctr, cid, "delay cmd=create step=MountFs nth=2 secs=1.5")
    assert (r.returncode, r.stdout) == (5, "hi\n"), r.stderr
    assert time.monotonic() - t >= 1.5
    create = trace.of(cid)[0]
    assert create["phases_ms"]["mounts"] >= 1500


def _hung(argv):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_hang_create_waits_until_pyrunc_is_killed(fctr, trace):
    cid = unique("fh")
    p = _hung(run_argv(fctr, cid, "hang cmd=create step=PivotRoot"))
    try:
        time.sleep(2.0)
        assert p.poll() is None          # the shim has no create timeout: ctr waits
        kill_hung(cid, "create")
        _, err = p.communicate(timeout=30)
    finally:
        p.kill()
        p.communicate()
    assert p.returncode == 1
    assert "did not terminate successfully: exit status 143" in err
    assert "unable to retrieve OCI runtime error" in err      # pyrunc wrote no log line
    assert hostenv.wait_for(lambda: not left(fctr, cid), 10.0), left(fctr, cid)
    (create, delete) = trace.of(cid)
    assert (create["end"], create["signal"], create["exit"]) == ("hang", "SIGTERM", None)
    assert create["faults"][0]["action"] == "hang"
    assert (delete["command"], delete["exit"]) == ("delete", 0)


def test_hang_start_leaves_a_created_task(fctr, trace):
    cid = unique("fh")
    p = _hung(run_argv(fctr, cid, "hang cmd=start"))
    try:
        time.sleep(2.0)
        assert p.poll() is None
        kill_hung(cid, "start")
        _, err = p.communicate(timeout=30)
    finally:
        p.kill()
        p.communicate()
    try:
        assert p.returncode == 1
        assert "OCI runtime start failed" in err and "exit status 143" in err
        assert fctr.task_status(cid) == "CREATED"
    finally:
        client_cleanup(fctr, cid)


# --- crash, die -----------------------------------------------------------------------------

def test_crash_mid_mounts(fctr, trace):
    cid = unique("fc")
    r = ctr_run(fctr, cid, "crash cmd=create step=MountFs nth=3", detach=True)
    assert r.returncode == 1
    assert "did not terminate successfully: exit status 137" in r.stderr
    assert "unable to retrieve OCI runtime error" in r.stderr
    # the shim's delete --force removed pyrunc's half-made container; ctr -d
    # leaves its container record (as for any failed create)
    assert hostenv.wait_for(lambda: left(fctr, cid) == [f"ctr container {cid}"], 10.0), \
        left(fctr, cid)
    client_cleanup(fctr, cid)
    assert commands(trace, cid) == [("create", None, "crash"), ("delete", 0, "exit")]


@pytest.mark.parametrize("step", ["CreateCgroup nth=1", "EnterCgroups"])
def test_crash_before_the_init_exists(fctr, trace, step):
    """state.json is written before the first cgroup and before the fork: a
    crash here leaves a container with no pid and cgroups in any state."""
    cid = unique("fc")
    r = ctr_run(fctr, cid, f"crash cmd=create step={step}", detach=True)
    assert r.returncode == 1 and "exit status 137" in r.stderr
    assert hostenv.wait_for(lambda: left(fctr, cid) == [f"ctr container {cid}"], 10.0), \
        left(fctr, cid)
    client_cleanup(fctr, cid)
    assert commands(trace, cid) == [("create", None, "crash"), ("delete", 0, "exit")]


def test_init_dies_at_exec(fctr, trace):
    cid = unique("fi")
    r = ctr_run(fctr, cid, "die cmd=start step=Exec code=7")
    # start itself succeeded; ctr reports the init's exit code as the task's
    assert (r.returncode, r.stdout) == (7, "")
    assert hostenv.wait_for(lambda: not left(fctr, cid), 10.0), left(fctr, cid)
    assert [c for c, _, _ in commands(trace, cid)][:2] == ["create", "start"]


def test_init_killed_before_start(fctr, trace):
    cid = unique("fi")
    r = ctr_run(fctr, cid, "die cmd=start")
    assert r.returncode == 1
    assert "OCI runtime start failed: cannot start a container that has stopped" in r.stderr
    # the shim saw its init exit: `ctr run --rm` removes task and container
    assert hostenv.wait_for(lambda: not left(fctr, cid), 10.0), left(fctr, cid)
    assert [c for c, _, _ in commands(trace, cid)] == ["create", "start", "delete", "delete"]


# --- bad pid file, bad log line -------------------------------------------------------------

def test_bad_pid_file(fctr, trace):
    cid = unique("fp")
    r = ctr_run(fctr, cid, "badpid cmd=create", detach=True)
    assert r.returncode == 1
    assert ('failed to create shim task: failed to retrieve OCI runtime container pid: '
            'strconv.Atoi: parsing "not-a-pid": invalid syntax') in r.stderr
    # create succeeded as far as pyrunc knows: the shim deletes it (--force kills the init)
    assert hostenv.wait_for(lambda: left(fctr, cid) == [f"ctr container {cid}"], 10.0), \
        left(fctr, cid)
    client_cleanup(fctr, cid)
    assert commands(trace, cid) == [("create", 0, "exit"), ("delete", 0, "exit")]


def test_pid_file_with_a_newline(fctr, trace):
    cid = unique("fp")
    r = ctr_run(fctr, cid, "badpid cmd=create content='{pid}\\n'", detach=True)
    assert r.returncode == 1 and 'strconv.Atoi: parsing "' in r.stderr and '\\n"' in r.stderr
    client_cleanup(fctr, cid)


def test_bad_log_line_hides_the_error(fctr, trace):
    cid = unique("fl")
    r = ctr_run(fctr, cid, "fail cmd=create msg=the-real-reason; badlog cmd=create")
    assert r.returncode == 1
    assert "unable to retrieve OCI runtime error (invalid character" in r.stderr
    assert "exit status 1" in r.stderr and "the-real-reason" not in r.stderr
    assert hostenv.wait_for(lambda: not left(fctr, cid), 10.0), left(fctr, cid)
    assert trace.of(cid)[0]["error"] == "the-real-reason"     # the trace still has it


def test_bad_log_line_after_success_is_harmless(fctr, trace):
    cid = unique("fl")
    r = ctr_run(fctr, cid, "badlog cmd=create")
    assert (r.returncode, r.stdout) == (5, "hi\n"), r.stderr
