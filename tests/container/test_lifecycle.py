"""The lifecycle of a real container under pyrunc: create, state, start, kill,
delete, run, list, and what runc does in the corner cases (exit codes and
error words mirrored from runc 1.1.5)."""
import json
import os
import signal
import subprocess
import time

import pytest

from tests.container.realkit import (RFC3339, TRAP_LOOP, error_line, status_of, wait_for,
                                     wait_status, wait_trap, without_namespace)

STATE_KEYS = {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"}


@pytest.fixture
def rt(pyrunc, make_runtime):
    return make_runtime(pyrunc, name="pyrunc")


@pytest.fixture
def ref(runc, make_runtime):
    return make_runtime(runc, name="runc")


def _create(rt, cid, bundle, *flags):
    r = rt.create(cid, bundle, *flags)
    assert r.returncode == 0, f"create failed: {r.stderr}"
    return r


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_create_start_kill_delete(rt, bundle_factory, container_id, tmp_path):
    bundle = bundle_factory(args=["sh", "-c", TRAP_LOOP],
                            config_overrides={"annotations": {"org.example.k": "v"}})
    cid = container_id()
    pid_file = tmp_path / "init.pid"
    _create(rt, cid, bundle, "--pid-file", pid_file)

    st = rt.state_json(cid)
    assert set(st) == STATE_KEYS | {"annotations"}
    assert st["annotations"] == {"org.example.k": "v"}
    assert (st["id"], st["status"], st["bundle"]) == (cid, "created", str(bundle))
    assert st["rootfs"] == bundle.rootfs and st["owner"] == ""
    assert RFC3339.match(st["created"]), st["created"]
    assert st["pid"] > 0 and _alive(st["pid"])
    raw = pid_file.read_bytes()
    assert raw == str(st["pid"]).encode(), f"pid file must be the bare decimal pid: {raw!r}"
    # created means waiting: the user program has not run yet
    assert b"sleep" not in open(f"/proc/{st['pid']}/cmdline", "rb").read()

    assert rt.start(cid).returncode == 0
    st = rt.state_json(cid)
    assert st["status"] == "running" and _alive(st["pid"])

    wait_trap(rt, cid)
    r = rt.kill(cid, "TERM")
    assert r.returncode == 0, r.stderr
    wait_status(rt, cid, "stopped")
    st = rt.state_json(cid)
    assert st["pid"] == 0 and set(st) == STATE_KEYS | {"annotations"}
    r = rt.delete(cid)
    assert r.returncode == 0, r.stderr
    r = rt.state(cid)
    assert r.returncode == 1 and error_line(r.stderr) == f"container {cid} does not exist"


def test_state_keys_match_runc(rt, ref, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    keys = {}
    for r in (ref, rt):
        cid = container_id()
        _create(r, cid, bundle)
        keys[r.name] = set(r.state_json(cid))
        assert r.delete(cid).returncode == 0, f"{r.name}: delete of a created container"
    assert keys["pyrunc"] == keys["runc"] == STATE_KEYS


@pytest.mark.parametrize("sig", ["TERM", "15", "SIGTERM", "sigterm"])
def test_kill_signal_forms(rt, bundle_factory, container_id, sig):
    bundle = bundle_factory(args=["sh", "-c", TRAP_LOOP])
    cid = container_id()
    r = rt.run(cid, bundle, "--detach")
    assert r.returncode == 0, r.stderr
    wait_trap(rt, cid)
    assert rt.kill(cid, sig).returncode == 0
    wait_status(rt, cid, "stopped")
    assert rt.delete(cid).returncode == 0


def test_kill_default_signal_is_term(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sh", "-c", TRAP_LOOP])
    cid = container_id()
    assert rt.run(cid, bundle, "-d").returncode == 0
    wait_trap(rt, cid)
    r = rt.call("kill", cid)
    assert r.returncode == 0, r.stderr
    wait_status(rt, cid, "stopped")
    assert rt.delete(cid).returncode == 0


def test_kill_unknown_signal(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    _create(rt, cid, bundle)
    r = rt.kill(cid, "NOSUCHSIG")
    assert r.returncode == 1 and "unknown signal" in error_line(r.stderr)
    assert status_of(rt, cid) == "created"
    assert rt.delete(cid, force=True).returncode == 0


def test_list_formats(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    ids = sorted([container_id(), container_id()])
    for cid in ids:
        _create(rt, cid, bundle)
    r = rt.list("json")
    listed = json.loads(r.stdout)
    assert [s["id"] for s in listed] == ids
    assert all(s["status"] == "created" and s["pid"] > 0 for s in listed)
    assert set(listed[0]) == STATE_KEYS
    r = rt.call("list", "-q")
    assert r.stdout.split() == ids
    r = rt.call("list")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert [ln.split()[0] for ln in lines[1:]] == ids
    assert all(ln.split()[2] == "created" for ln in lines[1:])
    for cid in ids:
        assert rt.delete(cid, force=True).returncode == 0
    assert json.loads(rt.list("json").stdout) in ([], None)


def test_list_owner_matches_runc(rt, ref, bundle_factory, container_id):
    """runc's list names the owner of the state dir (root), unlike `state`."""
    bundle = bundle_factory(args=["sleep", "10"])
    owners = {}
    for r in (ref, rt):
        cid = container_id()
        _create(r, cid, bundle)
        owners[r.name] = json.loads(r.list("json").stdout)[0]["owner"]
        r.delete(cid, force=True)
    assert owners["pyrunc"] == owners["runc"]


@pytest.mark.parametrize("code", [0, 7, 255])
def test_run_exit_code(rt, bundle_factory, container_id, code):
    bundle = bundle_factory(args=["sh", "-c", f"echo out; exit {code}"])
    r = rt.run(container_id(), bundle)
    assert r.returncode == code, r.stderr
    assert r.stdout == "out\n"


def test_run_killed_by_signal_is_128_plus_n(rt, bundle_factory, base_config, container_id):
    # without a pid namespace the shell is not an init and may kill itself
    config = without_namespace(json.loads(json.dumps(base_config)), "pid")
    bundle = bundle_factory(config=config, args=["sh", "-c", "kill -USR1 $$; sleep 5"])
    r = rt.run(container_id(), bundle)
    assert r.returncode == 128 + signal.SIGUSR1, r.stderr


def test_run_killed_by_sigkill_from_outside(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    p = subprocess.Popen(rt.argv("run", "--bundle", bundle, cid), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_status(rt, cid, "running")
        assert rt.kill(cid, "KILL").returncode == 0
        assert p.wait(10) == 137
    finally:
        p.kill()
        p.wait()
        p.stderr.close()
    assert rt.state(cid).returncode == 1, "run must delete the container"


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 42), (signal.SIGINT, 43)])
def test_run_forwards_signals(rt, bundle_factory, container_id, sig, code):
    bundle = bundle_factory(args=["sh", "-c", TRAP_LOOP])
    cid = container_id()
    p = subprocess.Popen(rt.argv("run", "--bundle", bundle, cid), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(sig)
        assert p.wait(10) == code
        assert p.stderr.read() == ""
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()
    assert rt.state(cid).returncode == 1


def test_run_detach(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    t0 = time.monotonic()
    r = rt.run(cid, bundle, "--detach")
    assert r.returncode == 0 and time.monotonic() - t0 < 5
    assert status_of(rt, cid) == "running"
    r = rt.delete(cid)
    assert r.returncode == 1
    assert error_line(r.stderr) == f"cannot delete container {cid} that is not stopped: running"
    pid = rt.state_json(cid)["pid"]
    r = rt.delete(cid, force=True)
    assert r.returncode == 0, r.stderr
    assert not _alive(pid), "delete --force must kill the container"
    assert rt.state(cid).returncode == 1


def test_run_keep(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sh", "-c", "exit 3"])
    cid = container_id()
    assert rt.run(cid, bundle, "--keep").returncode == 3
    st = rt.state_json(cid)
    assert st["status"] == "stopped" and st["pid"] == 0
    assert rt.delete(cid).returncode == 0


def test_delete_force_unknown_id_twice(rt, container_id):
    cid = container_id()
    for _ in range(2):
        r = rt.delete(cid, force=True)
        assert (r.returncode, r.stderr) == (0, "")
    r = rt.delete(cid)
    assert r.returncode == 1 and error_line(r.stderr) == f"container {cid} does not exist"


def test_delete_created_without_force(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    _create(rt, cid, bundle)
    pid = rt.state_json(cid)["pid"]
    r = rt.delete(cid)
    assert r.returncode == 0, r.stderr
    assert not _alive(pid)


def test_kill_stopped(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["true"])
    cid = container_id()
    assert rt.run(cid, bundle, "--keep").returncode == 0
    r = rt.kill(cid, "KILL")
    assert r.returncode == 1 and error_line(r.stderr) == "container not running"
    r = rt.kill(cid, "9", all=True)
    assert (r.returncode, r.stderr) == (0, "")
    r = rt.start(cid)
    assert r.returncode == 1
    assert error_line(r.stderr) == "cannot start a container that has stopped"
    assert rt.delete(cid).returncode == 0


def test_kill_all_running(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sh", "-c", "sleep 20 & sleep 20 & wait"])
    cid = container_id()
    assert rt.run(cid, bundle, "-d").returncode == 0
    assert rt.kill(cid, "KILL", all=True).returncode == 0
    wait_status(rt, cid, "stopped")
    assert rt.delete(cid).returncode == 0


def test_start_running_fails(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    assert rt.run(cid, bundle, "-d").returncode == 0
    r = rt.start(cid)
    assert r.returncode == 1
    assert error_line(r.stderr) == "cannot start an already running container"
    assert status_of(rt, cid) == "running"
    assert rt.delete(cid, force=True).returncode == 0


def test_id_in_use(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    _create(rt, cid, bundle)
    pid = rt.state_json(cid)["pid"]
    r = rt.create(cid, bundle)
    assert r.returncode == 1 and "already exists" in error_line(r.stderr)
    # the first container is untouched
    assert rt.state_json(cid)["pid"] == pid and status_of(rt, cid) == "created"
    assert rt.delete(cid, force=True).returncode == 0


def test_invalid_id(rt, bundle_factory):
    bundle = bundle_factory(args=["true"])
    r = rt.create("../escape", bundle)
    assert r.returncode == 1 and "invalid container id" in error_line(r.stderr)


def test_create_killed_midway_is_cleanable(rt, bundle_factory, container_id, tmp_path):
    """containerd kills a runtime that hangs; what is left must be deletable."""
    marker = tmp_path / "hook-running"
    hook = {"path": "/bin/sh", "args": [
        "sh", "-c", 'touch "$0"; while [ ! -e "$0.stop" ]; do sleep 0.05; done', str(marker)]}
    bundle = bundle_factory(args=["sleep", "10"],
                            config_overrides={"hooks": {"createRuntime": [hook]}})
    cid = container_id()
    p = subprocess.Popen(rt.argv("create", "--bundle", bundle, cid), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(marker.exists, 10), "the createRuntime hook never ran"
        st = rt.state_json(cid)
        assert st["status"] == "creating" and st["pid"] > 0
        init = st["pid"]
        p.kill()
        p.wait()
    finally:
        (tmp_path / "hook-running.stop").touch()
        p.kill()
        p.wait()
    assert wait_for(lambda: not _alive(init), 5), "the init outlived its runtime"
    assert status_of(rt, cid) == "stopped"
    r = rt.delete(cid)
    assert r.returncode == 0, r.stderr
    assert rt.state(cid).returncode == 1


@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP"])
def test_kill_created_container(rt, bundle_factory, container_id, sig):
    """runc's waiting init dies of SIGTERM and friends; `docker stop` of a
    created container relies on it.  (As pid 1 it needs handlers for that.)"""
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    _create(rt, cid, bundle)
    pid = rt.state_json(cid)["pid"]
    assert rt.kill(cid, sig).returncode == 0
    assert wait_for(lambda: not _alive(pid), 3), f"the created container ignored SIG{sig}"
    assert status_of(rt, cid) == "stopped"
    r = rt.start(cid)
    assert r.returncode == 1
    assert rt.delete(cid).returncode == 0


def test_waiting_init_is_the_sealed_waiter(rt, bundle_factory, container_id):
    """A created container's pid 1 is pyrunc-init (waiter.c) from a sealed memfd:
    a few pages of memory (runc's waiting init holds ~1.8 MiB anonymous) and no
    host file behind /proc/1/exe; `start` then runs the program in its place.

    Shown to fail: build_plan weakened to always keep the Python init ->
    exe /usr/bin/python3.11, RssAnon ~4.9 MiB.
    """
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    _create(rt, cid, bundle)
    try:
        pid = rt.state_json(cid)["pid"]
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/status") as f:
            anon_kib = int(next(ln for ln in f if ln.startswith("RssAnon:")).split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert exe.startswith("/memfd:pyrunc-init"), exe
        assert anon_kib <= 256, f"the waiting init holds {anon_kib} KiB anonymous memory"
        assert argv[0] == b"pyrunc-init" and b"sleep" not in argv
        assert os.listdir(f"/proc/{pid}/fd") and len(os.listdir(f"/proc/{pid}/fd")) <= 5
        assert rt.start(cid).returncode == 0
        assert wait_for(lambda: os.readlink(f"/proc/{pid}/exe").endswith("busybox"), 3)
    finally:
        rt.delete(cid, force=True)


def test_exec_that_fails_at_execve_leaves_no_process(rt, bundle_factory, container_id):
    """A file that passes the lookup but that the kernel will not run: `exec`
    fails with the kernel's reason and nothing of it stays in the container
    (pyrunc-init reaps the child whose execve failed; orphaned, it would be a
    zombie under the container's init, which does not reap).

    Shown to fail: without the waitpid in waiter.c's spawn() -> a
    "Z [memfd:pyrunc-in]" line in the container's ps.
    """
    bundle = bundle_factory(args=["sleep", "30"])
    bad = os.path.join(bundle.rootfs, "bad")
    with open(bad, "wb") as f:
        f.write(b"\x00\x01 not a program")
    os.chmod(bad, 0o755)
    cid = container_id()
    _create(rt, cid, bundle)
    try:
        assert rt.start(cid).returncode == 0
        for detach in ([], ["-d"]):
            r = rt.call("exec", *detach, cid, "/bad")
            assert r.returncode == 1 and "exec /bad: exec format error" in r.stderr, r.stderr
        r = rt.call("exec", cid, "ps", "-o", "pid,stat,args")
        rows = r.stdout.splitlines()[1:]
        assert [row.split()[0] for row in rows if "ps -o" not in row] == ["1"], r.stdout
    finally:
        rt.delete(cid, force=True)
