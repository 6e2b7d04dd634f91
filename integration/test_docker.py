"""dockerd 20.10 (/usr/bin/docker) driving the runtime through containerd's
runc shim: `docker run --runtime runc|pyrunc --network none`."""
import os

import pytest

from integration.client_docker import IMAGE
from integration.daemon import run
from integration.hostenv import wait_for
from integration.ptyrun import run_in_pty
from integration.support import (EAT_MEMORY, IGNORE_TERM, MISSING, TRAP_TERM, Foreground,
                                 cgroup_file, cgroups_path, memory_cgroup,
                                 memory_limit, state_written_by, unique)

SLEEPER = "while :; do sleep 0.05; done"
# docker 20.10 sends no process.consoleSize: the client sets the size after
# `start` returns, so the shell may run before it (under any runtime).
TTY_SCRIPT = ("until stty size >/dev/null 2>&1; do sleep 0.02; done; "
              "tty; stty size; echo $((6*7)); exit 5\n")


@pytest.fixture
def client(dockerd):
    return dockerd


def run_argv(d, runtime, *args, flags=()):
    return d.argv("run", "--runtime", runtime, "--network", "none", *flags, IMAGE, *args)


def docker_run(d, runtime, *args, flags=(), timeout=60):
    return run(run_argv(d, runtime, *args, flags=flags), timeout=timeout, env=d.env)


@pytest.fixture
def detached(dockerd, runtime):
    made = []

    def start(cmd=SLEEPER, flags=()):
        name = unique("dk")
        r = docker_run(dockerd, runtime, "sh", "-c", cmd, flags=("-d", "--name", name, *flags))
        assert r.returncode == 0, r.stderr
        made.append(name)
        return name
    yield start
    for name in made:
        dockerd.docker("rm", "-f", name)


def test_run_output_and_exit_code(dockerd, runtime):
    r = docker_run(dockerd, runtime, "sh", "-c", "echo out; echo err >&2; exit 3",
                   flags=("--rm",))
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


def test_run_rm_leaves_nothing(dockerd, runtime):
    r = docker_run(dockerd, runtime, "true", flags=("--rm",))
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: not dockerd.leftovers(), 10.0), dockerd.leftovers()


def test_tty_session(dockerd, runtime):
    r = run_in_pty(run_argv(dockerd, runtime, "sh", flags=("--rm", "-it")), env=dockerd.env,
                   script=[("# ", TTY_SCRIPT)], rows=30, cols=100)
    assert r.returncode == 5, r.output
    lines = r.output.splitlines()
    assert "42" in lines and "30 100" in lines, r.output
    assert any(line.startswith("/dev/pts/") for line in lines), r.output


def test_exec_plain_and_tty(dockerd, runtime, detached):
    name = detached()
    r = dockerd.docker("exec", name, "sh", "-c", "echo in; cat /proc/1/cmdline; echo; exit 7")
    assert r.returncode == 7, r.stderr
    assert r.stdout.splitlines()[0] == "in"
    assert r.stdout.splitlines()[1].replace("\0", " ").startswith("sh -c"), r.stdout
    t = run_in_pty(dockerd.argv("exec", "-it", name, "sh"), env=dockerd.env,
                   script=[("# ", "tty; echo $((6*7)); exit 4\n")])
    assert t.returncode == 4, t.output
    assert "42" in t.output.splitlines(), t.output
    assert any(line.startswith("/dev/pts/") for line in t.output.splitlines()), t.output


def test_top(dockerd, runtime, detached):
    name = detached()
    pid = dockerd.inspect(name)["State"]["Pid"]
    r = dockerd.docker("top", name)
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    col = header.split().index("PID")
    assert pid in [int(row.split()[col]) for row in rows], r.stdout


def test_pause_unpause(dockerd, runtime, detached):
    name = detached()
    r = dockerd.docker("pause", name)
    assert r.returncode == 0, r.stderr
    assert dockerd.inspect(name)["State"]["Status"] == "paused"
    config = dockerd.bundle(dockerd.inspect(name)["Id"]) + "/config.json"
    assert cgroup_file(config, "freezer", "freezer.state") == "FROZEN"
    r = dockerd.docker("unpause", name)
    assert r.returncode == 0, r.stderr
    assert dockerd.inspect(name)["State"]["Status"] == "running"
    assert cgroup_file(config, "freezer", "freezer.state") == "THAWED"
    r = dockerd.docker("exec", name, "echo", "alive")
    assert (r.returncode, r.stdout) == (0, "alive\n"), r.stderr


def _foreground(dockerd, runtime, script):
    name = unique("dk")
    fg = Foreground(run_argv(dockerd, runtime, "sh", "-c", script, flags=("--rm", "--name", name)),
                    env=dockerd.env)
    fg.wait_for_output("ready")
    return name, fg


def test_kill_term(dockerd, runtime):
    name, fg = _foreground(dockerd, runtime, TRAP_TERM)
    try:
        r = dockerd.docker("kill", "-s", "TERM", name)
        assert r.returncode == 0, r.stderr
        code, _, err = fg.wait()
        assert code == 42, err
    finally:
        fg.close()


def test_kill_term_ignored_then_kill(dockerd, runtime):
    name, fg = _foreground(dockerd, runtime, IGNORE_TERM)
    try:
        assert dockerd.docker("kill", "-s", "TERM", name).returncode == 0
        assert fg.proc.poll() is None and dockerd.inspect(name)["State"]["Running"]
        assert dockerd.docker("kill", name).returncode == 0            # SIGKILL
        code, _, err = fg.wait()
        assert code == 137, err
    finally:
        fg.close()


def test_stop_kills_every_process(dockerd, runtime, detached):
    """`docker stop` on a container that ignores SIGTERM and has an exec'd
    process: SIGTERM, then SIGKILL for all after the timeout."""
    name = detached(IGNORE_TERM)
    r = dockerd.docker("exec", "-d", name, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    r = dockerd.docker("stop", "-t", "1", name)
    assert r.returncode == 0, r.stderr
    state = dockerd.inspect(name)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)


def test_memory_limit_oom(dockerd, runtime):
    name = unique("dk")
    r = docker_run(dockerd, runtime, "sh", "-c", EAT_MEMORY,
                   flags=("--name", name, "-m", "32m", "--memory-swap", "32m"))
    try:
        oom = dockerd.inspect(name)["State"]["OOMKilled"]
        assert (r.returncode, oom) == (137, True), r.stderr
    finally:
        dockerd.docker("rm", "-f", name)


def test_seccomp_default_profile(dockerd, runtime):
    r = docker_run(dockerd, runtime, "sh", "-c", "grep '^Seccomp:' /proc/self/status",
                   flags=("--rm",))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Seccomp:", "2"]


@pytest.mark.parametrize("cmd, words", MISSING)
def test_create_failure_missing_executable(dockerd, runtime, cmd, words):
    r = docker_run(dockerd, runtime, cmd, flags=("--rm",))
    assert r.returncode == 127, r.stderr
    assert f'unable to start container process: exec: "{cmd}"' in r.stderr, r.stderr
    assert words in r.stderr, r.stderr


def test_cgroup_is_where_cgroups_path_says(dockerd, runtime, detached):
    name = detached()
    info = dockerd.inspect(name)
    want = cgroups_path(dockerd.bundle(info["Id"]) + "/config.json")
    got = memory_cgroup(info["State"]["Pid"])
    assert got == want


def test_stats_read_container_cgroup(dockerd, runtime, detached):
    name = detached(flags=("-m", "64m"))
    r = dockerd.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", name)
    assert r.returncode == 0, r.stderr
    limit = r.stdout.strip().rpartition("/ ")[2]
    assert limit == "64MiB", r.stdout


def test_update_memory_limit(dockerd, runtime, detached):
    """`docker update` reaches the runtime as `update --resources -`."""
    name = detached(flags=("-m", "64m", "--memory-swap", "64m"))
    r = dockerd.docker("update", "-m", "48m", "--memory-swap", "48m", name)
    assert r.returncode == 0, r.stderr
    config = dockerd.bundle(dockerd.inspect(name)["Id"]) + "/config.json"
    assert memory_limit(config) == 48 << 20


def test_create_failure_permission_denied(dockerd, runtime):
    r = docker_run(dockerd, runtime, "/etc/passwd", flags=("--rm",))
    assert r.returncode == 126, r.stderr
    assert "permission denied" in r.stderr, r.stderr


def test_stop_and_rm_leave_nothing(dockerd, runtime):
    name = unique("dk")
    r = docker_run(dockerd, runtime, "sh", "-c", SLEEPER, flags=("-d", "--name", name))
    assert r.returncode == 0, r.stderr
    try:
        info = dockerd.inspect(name)
        assert info["State"]["Running"]
        # dockerd drives the runtime we named: its state is in that root
        assert state_written_by(os.path.join(dockerd.runtime_root(), info["Id"])) == runtime
        assert dockerd.docker("stop", "-t", "0", name).returncode == 0
        r = dockerd.docker("rm", name)
        assert r.returncode == 0, r.stderr
    finally:
        dockerd.docker("rm", "-f", name)
    assert wait_for(lambda: not dockerd.leftovers(), 10.0), dockerd.leftovers()
