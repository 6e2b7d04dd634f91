"""podman 4.3 + conmon driving the runtime: `podman --runtime runc|pyrunc`,
both named in the private containers.conf (see client_podman)."""
import os

import pytest

from integration.client_podman import IMAGE, RUNTIME_ROOTS
from integration.daemon import run
from integration.hostenv import wait_for
from integration.ptyrun import run_in_pty
from integration.support import (EAT_MEMORY, IGNORE_TERM, MISSING, TRAP_TERM, Foreground,
                                 cgroup_file, cgroups_path, memory_cgroup,
                                 memory_limit, state_written_by, unique)

SLEEPER = "while :; do sleep 0.05; done"
# like docker, podman sets the tty size after `start`: wait for it
TTY_SCRIPT = ("until stty size >/dev/null 2>&1; do sleep 0.02; done; "
              "tty; stty size; echo $((6*7)); exit 5\n")


@pytest.fixture
def client(podman):
    return podman


def run_argv(p, runtime, *args, flags=()):
    return p.argv("run", *p.run_flags(), *flags, IMAGE, *args, runtime=runtime)


def podman_run(p, runtime, *args, flags=(), timeout=60):
    return run(run_argv(p, runtime, *args, flags=flags), timeout=timeout, env=p.env,
               cwd=p.cwd)


@pytest.fixture
def named(podman, runtime):
    """A fresh container name; its container (if any) removed after the test,
    and its id remembered for the runtime-root leak check."""
    made = []

    def new():
        made.append(unique("pm"))
        return made[-1]
    yield new
    for name in made:
        cid = podman.full_id(name)
        if cid:
            podman.ids.add(cid)
        podman.podman("rm", "-f", "-t", "0", name, runtime=runtime)


@pytest.fixture
def detached(podman, runtime, named):
    def start(cmd=SLEEPER, flags=()):
        name = named()
        r = podman_run(podman, runtime, "sh", "-c", cmd, flags=("-d", "--name", name, *flags))
        assert r.returncode == 0, r.stderr
        podman.ids.add(r.stdout.strip())
        return name
    return start


def test_run_output_and_exit_code(podman, runtime):
    r = podman_run(podman, runtime, "sh", "-c", "echo out; echo err >&2; exit 3",
                   flags=("--rm",))
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


def test_run_rm_leaves_nothing(podman, runtime, named):
    name = named()
    r = podman_run(podman, runtime, "true", flags=("--rm", "--name", name))
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: not podman.leftovers(), 10.0), podman.leftovers()


def test_tty_session(podman, runtime):
    r = run_in_pty(run_argv(podman, runtime, "sh", flags=("--rm", "-it")), env=podman.env,
                   cwd=podman.cwd, script=[("# ", TTY_SCRIPT)], rows=30, cols=100)
    assert r.returncode == 5, r.output
    lines = r.output.splitlines()
    assert "42" in lines and "30 100" in lines, r.output
    assert any(line.startswith("/dev/pts/") for line in lines), r.output


def test_exec_plain_and_tty(podman, runtime, detached):
    name = detached()
    r = podman.podman("exec", name, "sh", "-c", "echo in; cat /proc/1/cmdline; echo; exit 7",
                      runtime=runtime)
    assert r.returncode == 7, r.stderr
    assert r.stdout.splitlines()[0] == "in"
    assert r.stdout.splitlines()[1].replace("\0", " ").startswith("sh -c"), r.stdout
    t = run_in_pty(podman.argv("exec", "-it", name, "sh", runtime=runtime), env=podman.env,
                   cwd=podman.cwd, script=[("# ", "tty; echo $((6*7)); exit 4\n")])
    assert t.returncode == 4, t.output
    assert "42" in t.output.splitlines(), t.output
    assert any(line.startswith("/dev/pts/") for line in t.output.splitlines()), t.output


def test_top(podman, runtime, detached):
    name = detached()
    r = podman.podman("top", name, "pid", "args", runtime=runtime)
    assert r.returncode == 0, r.stderr
    # podman top lists container pids (pid 1 is the init)
    assert any(line.split()[:1] == ["1"] for line in r.stdout.splitlines()[1:]), r.stdout


def test_pause_unpause(podman, runtime, detached):
    name = detached()
    r = podman.podman("pause", name, runtime=runtime)
    assert r.returncode == 0, r.stderr
    assert podman.inspect(name)["State"]["Status"] == "paused"
    config = podman.inspect(name)["OCIConfigPath"]
    assert cgroup_file(config, "freezer", "freezer.state") == "FROZEN"
    r = podman.podman("unpause", name, runtime=runtime)
    assert r.returncode == 0, r.stderr
    assert podman.inspect(name)["State"]["Status"] == "running"
    assert cgroup_file(config, "freezer", "freezer.state") == "THAWED"
    r = podman.podman("exec", name, "echo", "alive", runtime=runtime)
    assert (r.returncode, r.stdout) == (0, "alive\n"), r.stderr


def _foreground(podman, runtime, name, script):
    fg = Foreground(run_argv(podman, runtime, "sh", "-c", script, flags=("--rm", "--name", name)),
                    env=podman.env, cwd=podman.cwd)
    fg.wait_for_output("ready")
    return fg


def test_kill_term(podman, runtime, named):
    name = named()
    fg = _foreground(podman, runtime, name, TRAP_TERM)
    try:
        r = podman.podman("kill", "-s", "TERM", name, runtime=runtime)
        assert r.returncode == 0, r.stderr
        code, _, err = fg.wait()
        assert code == 42, err
    finally:
        fg.close()


def test_kill_term_ignored_then_kill(podman, runtime, named):
    name = named()
    fg = _foreground(podman, runtime, name, IGNORE_TERM)
    try:
        assert podman.podman("kill", "-s", "TERM", name, runtime=runtime).returncode == 0
        assert fg.proc.poll() is None and podman.inspect(name)["State"]["Running"]
        assert podman.podman("kill", name, runtime=runtime).returncode == 0    # SIGKILL
        code, _, err = fg.wait()
        assert code == 137, err
    finally:
        fg.close()


def test_stop_kills_every_process(podman, runtime, detached):
    name = detached(IGNORE_TERM)
    r = podman.podman("exec", "-d", name, "sleep", "1000", runtime=runtime)
    assert r.returncode == 0, r.stderr
    r = podman.podman("stop", "-t", "1", name, runtime=runtime)
    assert r.returncode == 0, r.stderr
    state = podman.inspect(name)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)


def test_memory_limit_oom(podman, runtime, named):
    """Exit 137 only: on OOM conmon 2.1.6 writes its "oom" marker into its
    working directory (podman's cwd), not where podman 4.3 looks, so
    State.OOMKilled stays false under any runtime (hence podman.cwd)."""
    name = named()
    r = podman_run(podman, runtime, "sh", "-c", EAT_MEMORY,
                   flags=("--name", name, "-m", "32m", "--memory-swap", "32m"))
    assert r.returncode == 137, r.stderr


def test_seccomp_default_profile(podman, runtime):
    r = podman_run(podman, runtime, "sh", "-c", "grep '^Seccomp:' /proc/self/status",
                   flags=("--rm",))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Seccomp:", "2"]


@pytest.mark.parametrize("cmd, words", MISSING)
def test_create_failure_missing_executable(podman, runtime, cmd, words):
    r = podman_run(podman, runtime, cmd, flags=("--rm",))
    assert r.returncode == 127, r.stderr
    assert f'unable to start container process: exec: "{cmd}"' in r.stderr, r.stderr
    assert words in r.stderr, r.stderr


def test_cgroup_is_where_cgroups_path_says(podman, runtime, detached):
    name = detached()
    info = podman.inspect(name)
    want = cgroups_path(info["OCIConfigPath"])
    got = memory_cgroup(info["State"]["Pid"])
    assert got == want


def test_update_memory_limit(podman, runtime, detached):
    """`podman update` reaches the runtime as `update --resources=FILE`."""
    name = detached(flags=("-m", "64m", "--memory-swap", "64m"))
    r = podman.podman("update", "-m", "48m", "--memory-swap", "48m", name, runtime=runtime)
    assert r.returncode == 0, r.stderr
    assert memory_limit(podman.inspect(name)["OCIConfigPath"]) == 48 << 20


def test_create_failure_permission_denied(podman, runtime):
    r = podman_run(podman, runtime, "/etc/passwd", flags=("--rm",))
    assert r.returncode == 126, r.stderr
    assert "permission denied" in r.stderr, r.stderr


def test_runtime_without_json_log(podman, runtimes, runtime, session_dir):
    """`podman --runtime /path/NAME` with a NAME not in runtime_supports_json
    (pyrunc is in none of podman's defaults): conmon passes no --log, and
    the error reaches podman only through the runtime's stderr."""
    path = os.path.join(session_dir, f"{runtime}-nolog")
    if not os.path.lexists(path):
        os.symlink(runtimes[runtime], path)
    r = run([podman.argv()[0], "--runtime", path, "run", *podman.run_flags(), "--rm", IMAGE,
             "sh", "-c", "echo ok"], env=podman.env, cwd=podman.cwd)
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    r = run([podman.argv()[0], "--runtime", path, "run", *podman.run_flags(), "--rm", IMAGE,
             "/no/such/binary"], env=podman.env, cwd=podman.cwd)
    assert r.returncode == 127, r.stderr
    # runc writes logrus text (quotes escaped), pyrunc "pyrunc: <msg>"
    assert "stat /no/such/binary: no such file or directory" in r.stderr, r.stderr


def test_stop_and_rm_leave_nothing(podman, runtime, named):
    name = named()
    r = podman_run(podman, runtime, "sh", "-c", SLEEPER, flags=("-d", "--name", name))
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    podman.ids.add(cid)
    assert podman.inspect(name)["State"]["Running"]
    # conmon drives the runtime we named: its state is in that runtime's root
    assert state_written_by(os.path.join(RUNTIME_ROOTS[runtime], cid)) == runtime
    assert podman.podman("stop", "-t", "0", name, runtime=runtime).returncode == 0
    r = podman.podman("rm", name, runtime=runtime)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: not podman.leftovers(), 10.0), podman.leftovers()
