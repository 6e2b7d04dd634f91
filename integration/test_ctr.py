"""containerd 1.6 + ctr driving the runtime through the io.containerd.runc.v2
shim (`ctr run --runc-binary`).  Every test runs under runc and pyrunc."""
import os

import pytest

from integration.client_containerd import IMAGE, NAMESPACE
from integration.daemon import run
from integration.hostenv import wait_for
from integration.ptyrun import run_in_pty
from integration.support import (EAT_MEMORY, IGNORE_TERM, MISSING, TRAP_TERM, Foreground,
                                 cgroup_file, cgroups_path, memory_cgroup, state_written_by,
                                 unique)

SLEEPER = "while :; do sleep 0.05; done"


@pytest.fixture
def client(containerd):
    return containerd


def run_argv(c, runtime, cid, *cmd, flags=()):
    return c.argv("run", *flags, *c.runtime_flags(runtime), IMAGE, cid, *cmd)


def ctr_run(c, runtime, cid, *cmd, flags=(), timeout=60):
    return run(run_argv(c, runtime, cid, *cmd, flags=flags), timeout=timeout)


@pytest.fixture
def detached(containerd, runtime):
    """Start a detached task running SLEEPER; removed (task and container)
    at the end of the test."""
    made = []

    def start(cmd=SLEEPER, flags=()):
        cid = unique("ctr")
        r = ctr_run(containerd, runtime, cid, "sh", "-c", cmd, flags=("-d", *flags))
        assert r.returncode == 0, r.stderr
        made.append(cid)
        return cid
    yield start
    for cid in made:
        containerd.ctr("task", "delete", "-f", cid)
        containerd.ctr("container", "delete", cid)


def test_run_output_and_exit_code(containerd, runtime):
    r = ctr_run(containerd, runtime, unique("ctr"), "sh", "-c",
                "echo out; echo err >&2; exit 3", flags=("--rm",))
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


def test_run_rm_leaves_nothing(containerd, runtime):
    cid = unique("ctr")
    r = ctr_run(containerd, runtime, cid, "true", flags=("--rm",))
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: not containerd.leftovers(), 10.0), containerd.leftovers()


def test_tty_session(containerd, runtime):
    cid = unique("ctr")
    r = run_in_pty(run_argv(containerd, runtime, cid, "sh", flags=("--rm", "-t")),
                   script=[("# ", "tty; stty size; echo $((6*7)); exit 5\n")], rows=30,
                   cols=100)
    assert r.returncode == 5, r.output
    lines = r.output.splitlines()
    assert "42" in lines and "30 100" in lines, r.output
    assert any(line.startswith("/dev/pts/") for line in lines), r.output


def test_exec_plain_and_tty(containerd, runtime, detached):
    cid = detached()
    r = containerd.exec("--exec-id", "e1", cid, "sh", "-c",
                       "echo in; cat /proc/1/cmdline; echo; exit 7")
    assert r.returncode == 7, r.stderr
    assert r.stdout.splitlines()[0] == "in"
    assert r.stdout.splitlines()[1].replace("\0", " ").startswith("sh -c"), r.stdout
    t = run_in_pty(containerd.exec_argv("-t", "--exec-id", "e2", cid, "sh"),
                   script=[("# ", "tty; echo $((6*7)); exit 4\n")])
    assert t.returncode == 4, t.output
    assert "42" in t.output.splitlines(), t.output
    assert any(line.startswith("/dev/pts/") for line in t.output.splitlines()), t.output


def test_ps(containerd, runtime, detached):
    cid = detached()
    pid = containerd.task_pid(cid)
    r = containerd.ctr("task", "ps", cid)
    assert r.returncode == 0, r.stderr
    pids = [int(line.split()[0]) for line in r.stdout.splitlines()[1:] if line.strip()]
    assert pid in pids, r.stdout


def test_pause_resume(containerd, runtime, detached):
    cid = detached()
    config = containerd.bundle(cid) + "/config.json"
    assert containerd.ctr("task", "pause", cid).returncode == 0
    assert containerd.task_status(cid) == "PAUSED"
    assert cgroup_file(config, "freezer", "freezer.state") == "FROZEN"
    assert containerd.ctr("task", "resume", cid).returncode == 0
    assert containerd.task_status(cid) == "RUNNING"
    assert cgroup_file(config, "freezer", "freezer.state") == "THAWED"
    r = containerd.exec("--exec-id", "after", cid, "echo", "alive")
    assert (r.returncode, r.stdout) == (0, "alive\n"), r.stderr


def _foreground(containerd, runtime, script):
    cid = unique("ctr")
    fg = Foreground(run_argv(containerd, runtime, cid, "sh", "-c", script, flags=("--rm",)))
    fg.wait_for_output("ready")
    return cid, fg


def test_kill_term(containerd, runtime):
    cid, fg = _foreground(containerd, runtime, TRAP_TERM)
    try:
        assert containerd.ctr("task", "kill", cid).returncode == 0       # SIGTERM
        code, _, err = fg.wait()
        assert code == 42, err
    finally:
        fg.close()


def test_kill_term_ignored_then_kill(containerd, runtime):
    cid, fg = _foreground(containerd, runtime, IGNORE_TERM)
    try:
        assert containerd.ctr("task", "kill", "-s", "TERM", cid).returncode == 0
        assert fg.proc.poll() is None and containerd.task_status(cid) == "RUNNING"
        assert containerd.ctr("task", "kill", "-s", "KILL", cid).returncode == 0
        code, _, err = fg.wait()
        assert code == 137, err
    finally:
        fg.close()


def test_kill_all(containerd, runtime):
    cid, fg = _foreground(containerd, runtime, IGNORE_TERM)
    try:
        r = containerd.exec("-d", "--exec-id", "extra", cid, "sleep", "1000")
        assert r.returncode == 0, r.stderr
        r = containerd.ctr("task", "kill", "--all", "-s", "KILL", cid)
        assert r.returncode == 0, r.stderr
        code, _, err = fg.wait()
        assert code == 137, err
    finally:
        fg.close()


def test_memory_limit_oom(containerd, runtime):
    r = ctr_run(containerd, runtime, unique("ctr"), "sh", "-c", EAT_MEMORY,
                flags=("--rm", "--memory-limit", str(32 << 20)))
    assert r.returncode == 137, r.stderr


@pytest.mark.parametrize("cmd, words", MISSING)
def test_create_failure_missing_executable(containerd, runtime, cmd, words):
    r = ctr_run(containerd, runtime, unique("ctr"), cmd, flags=("--rm",))
    assert r.returncode == 1
    assert "OCI runtime create failed" in r.stderr, r.stderr
    assert f'unable to start container process: exec: "{cmd}"' in r.stderr, r.stderr
    assert words in r.stderr, r.stderr


def test_cgroup_is_where_cgroups_path_says(containerd, runtime, detached):
    cid = detached()
    want = cgroups_path(containerd.bundle(cid) + "/config.json")
    got = memory_cgroup(containerd.task_pid(cid))
    assert got == want


def test_metrics_read_container_cgroup(containerd, runtime, detached):
    cid = detached(flags=("--memory-limit", str(64 << 20)))
    r = containerd.ctr("task", "metrics", cid)
    assert r.returncode == 0, r.stderr
    rows = dict(line.split()[:2] for line in r.stdout.splitlines() if len(line.split()) >= 2)
    limit = rows.get("memory.limit_in_bytes")
    assert limit == str(64 << 20), r.stdout


def test_create_failure_permission_denied(containerd, runtime):
    r = ctr_run(containerd, runtime, unique("ctr"), "/etc/passwd", flags=("--rm",))
    assert r.returncode == 1
    assert "OCI runtime create failed" in r.stderr, r.stderr
    assert "permission denied" in r.stderr, r.stderr


def test_stop_and_delete_leave_nothing(containerd, runtime):
    cid = unique("ctr")
    r = ctr_run(containerd, runtime, cid, "sh", "-c", SLEEPER, flags=("-d",))
    assert r.returncode == 0, r.stderr
    try:
        pid = containerd.task_pid(cid)
        assert pid and containerd.task_status(cid) == "RUNNING"
        # the shim drives the runtime we named: its state is in that root
        state_dir = os.path.join(containerd.runc_root(runtime), NAMESPACE, cid)
        assert state_written_by(state_dir) == runtime
        assert containerd.ctr("task", "kill", "-s", "KILL", cid).returncode == 0
        assert wait_for(lambda: containerd.task_status(cid) == "STOPPED", 10.0)
        r = containerd.ctr("task", "delete", cid)
        assert r.returncode == 0, r.stderr
        assert containerd.ctr("container", "delete", cid).returncode == 0
    finally:
        containerd.ctr("task", "delete", "-f", cid)
        containerd.ctr("container", "delete", cid)
    assert wait_for(lambda: not containerd.leftovers(), 10.0), containerd.leftovers()
