"""Faults: pyrunc killed between any two steps, a container init that dies
early, a full or read-only state root, and commands racing on one id.  After
each: no traceback, one clear error line, and once `delete --force` has run,
nothing of the container is left (state dir, cgroup, mount, process, fd).

Killing "between any two steps": each command is first run once under
`strace -o` (this process only, not its children); every call from the
first one that touches the container's state dir on, that changes the host
or talks to the container (mkdir, write, rename, clone, sendto, recvfrom,
wait4, kill, unlink, rmdir, ...), is a kill point.  Then for each point the
command runs again under `strace -e inject=SYSCALL:signal=KILL:when=N`, which
SIGKILLs it on entry to the N-th call of that syscall.  strace counts calls
per syscall and per process, and pyrunc makes the same calls in the same
order every run (same imports, PYTHONHASHSEED fixed), so the kill lands on
the same step every time; each run checks that the kill did happen.  No
fault hooks in pyrunc are needed.

The container's own processes (the forked child, the init) are killed by
the tests that follow: by a createRuntime hook, by a createContainer hook
from inside, and by a sweep that SIGKILLs the whole process group of
`pyrunc create` at increasing delays.
"""
import os
import secrets
import signal
import subprocess
import time

import pytest

from tests.container import faultkit
from tests.container.faultkit import (cgroup_dirs_of, check_result, fill_blocks, fill_inodes,
                                      host_leaks, init_with_child, kill_strays, new_watch,
                                      processes_naming, race, status_of, wait_until)

pytestmark = pytest.mark.root
# install.sh --test installs it (Debian package strace)
needs_strace = pytest.mark.skipif(faultkit.STRACE is None, reason="strace is not installed")

ENV = dict(os.environ, PYTHONHASHSEED="0")


@pytest.fixture
def rt(pyrunc, make_runtime, tmp_path):
    r = make_runtime(pyrunc, name="pyrunc", timeout=60)
    r.log_path = str(tmp_path / "pyrunc-log.json")   # outside the state root
    return r


@pytest.fixture
def bundle(bundle_factory):
    return bundle_factory(args=["sleep", "600"])


def _cid(leak_check, prefix="kf"):
    cid = f"{prefix}-{secrets.token_hex(4)}"
    leak_check.ids.add(cid)
    return cid


def _force_delete_leaves_nothing(rt, cid, watch, what):
    d = rt.delete(cid, force=True)
    assert "Traceback" not in d.stderr, f"{what}: delete --force: {d.stderr}"
    assert d.returncode == 0, f"{what}: delete --force failed: {d.stderr}"
    leaks = host_leaks(watch, cid, rt.root)
    assert not leaks, f"{what}: after delete --force: {leaks}"


def _record_points(argv, marker, tmp_path, name):
    trace, err = tmp_path / f"{name}.strace", tmp_path / f"{name}.stderr"
    assert faultkit.record_trace(argv, str(trace), str(err), ENV) == 0, \
        f"{name} failed under strace: {err.read_text()}"
    points = faultkit.kill_points(str(trace), marker)
    assert points, f"no kill points found in {trace}"
    return points


def _killed_at(argv, point):
    return faultkit.killed_at(argv, point, ENV)


# --------------------------------------------------------------------- SIGKILL at every step

def _userns_with_hook(c):
    # id maps written by create from outside, and a runtime hook: two more
    # exchanges with the container to be killed in the middle of
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    c["hooks"] = {"createRuntime": [{"path": "/bin/true"}]}


def _no_pid_namespace(c):
    # the init is create's own child, with no intermediate process
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]


CREATE_VARIANTS = {"default": None, "userns_and_hook": _userns_with_hook,
                   "no_pid_namespace": _no_pid_namespace}


@needs_strace
@pytest.mark.parametrize("variant", sorted(CREATE_VARIANTS))
def test_kill_create_at_every_step(rt, bundle, leak_check, tmp_path, variant):
    if CREATE_VARIANTS[variant]:
        CREATE_VARIANTS[variant](bundle.config)
        bundle.write_config()
    rec = _cid(leak_check, "kr")
    points = _record_points(rt.argv("create", "--bundle", bundle, rec),
                            f'"{os.path.join(rt.root, rec)}"', tmp_path, "create")
    assert rt.delete(rec, force=True).returncode == 0
    assert len(points) > 20, [str(p) for p in points]
    missed = []
    for point in points:
        cid = _cid(leak_check)
        watch = new_watch([tmp_path], os.path.dirname(rt.root), cid)
        if not _killed_at(rt.argv("create", "--bundle", bundle, cid), point):
            missed.append(str(point))
        _force_delete_leaves_nothing(rt, cid, watch, f"create killed at {point}")
    assert not missed, f"create never reached: {missed}"


@needs_strace
def test_kill_start_at_every_step(rt, bundle, leak_check, tmp_path):
    rec = _cid(leak_check, "kr")
    assert rt.create(rec, bundle).returncode == 0
    points = _record_points(rt.argv("start", rec), f'"{os.path.join(rt.root, rec)}"',
                            tmp_path, "start")
    assert rt.delete(rec, force=True).returncode == 0
    missed = []
    for point in points:
        cid = _cid(leak_check)
        watch = new_watch([tmp_path], os.path.dirname(rt.root), cid)
        assert rt.create(cid, bundle).returncode == 0
        if not _killed_at(rt.argv("start", cid), point):
            missed.append(str(point))
        st = rt.state(cid)
        assert st.returncode == 0 and "Traceback" not in st.stderr, st.stderr
        _force_delete_leaves_nothing(rt, cid, watch, f"start killed at {point}")
    assert not missed, f"start never reached: {missed}"


@needs_strace
def test_kill_exec_at_every_step(rt, bundle, leak_check, tmp_path):
    cid = _cid(leak_check)
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    try:
        exec_argv = rt.argv("exec", cid, "sleep", "600")
        points = _record_points(rt.argv("exec", cid, "true"),
                                f'"{os.path.join(rt.root, cid)}"', tmp_path, "exec")
        init = rt.state_json(cid)["pid"]
        missed = []
        for point in points:
            if not _killed_at(exec_argv, point):
                missed.append(str(point))
            # the container is still there and still running; an exec that got
            # as far as its program may have left a `sleep 600` inside it
            st = rt.state_json(cid)
            assert (st["status"], st["pid"]) == ("running", init), (str(point), st)
            r = rt.call("exec", cid, "true")
            assert r.returncode == 0, f"exec after a killed exec ({point}): {r.stderr}"
            kill_strays(cid, init)
        assert not missed, f"exec never reached: {missed}"
    finally:
        watch = new_watch([tmp_path], os.path.dirname(rt.root), cid)
        _force_delete_leaves_nothing(rt, cid, watch, "after the exec sweep")


@needs_strace
def test_kill_delete_at_every_step(rt, bundle, leak_check, tmp_path):
    rec = _cid(leak_check, "kr")
    assert rt.create(rec, bundle).returncode == 0
    assert rt.start(rec).returncode == 0
    points = _record_points(rt.argv("delete", "--force", rec),
                            f'"{os.path.join(rt.root, rec)}"', tmp_path, "delete")
    missed = []
    for point in points:
        cid = _cid(leak_check)
        watch = new_watch([tmp_path], os.path.dirname(rt.root), cid)
        assert rt.create(cid, bundle).returncode == 0
        assert rt.start(cid).returncode == 0
        if not _killed_at(rt.argv("delete", "--force", cid), point):
            missed.append(str(point))
        _force_delete_leaves_nothing(rt, cid, watch, f"delete killed at {point}")
    assert not missed, f"delete never reached: {missed}"


# --------------------------------------------------------------------- the whole process group

def test_kill_create_process_group_at_increasing_delays(rt, bundle, leak_check, tmp_path):
    """SIGKILL to pyrunc create and everything it forked (its child, the
    intermediate, the init before it leaves the group) at a sweep of delays
    across a create: the container's side dies mid-setup too."""
    t0 = time.monotonic()
    probe = _cid(leak_check, "kr")
    assert rt.create(probe, bundle).returncode == 0
    duration = time.monotonic() - t0
    assert rt.delete(probe, force=True).returncode == 0
    steps = 16
    outcomes = []
    for i in range(steps):
        delay = duration * 1.2 * i / steps
        cid = _cid(leak_check)
        watch = new_watch([tmp_path], os.path.dirname(rt.root), cid)
        with open(os.devnull, "wb") as null:
            p = subprocess.Popen(rt.argv("create", "--bundle", bundle, cid), stdout=null,
                                 stderr=null, start_new_session=True)
            time.sleep(delay)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            outcomes.append(p.wait(30))
        _force_delete_leaves_nothing(rt, cid, watch, f"create's group killed after {delay:.3f}s")
    # the sweep must have hit create while it ran, not only before or after
    assert -signal.SIGKILL in outcomes, outcomes


# --------------------------------------------------------------------- the init dies early

def test_init_killed_between_create_and_start(rt, bundle, leak_check, tmp_path):
    cid = _cid(leak_check)
    assert rt.create(cid, bundle).returncode == 0
    init = rt.state_json(cid)["pid"]
    os.kill(init, signal.SIGKILL)
    assert wait_until(lambda: rt.state_json(cid)["status"] == "stopped")
    r = rt.start(cid)
    assert r.returncode == 1
    assert check_result(r) == "cannot start a container that has stopped"
    d = rt.delete(cid)   # stopped: no --force needed
    assert d.returncode == 0, d.stderr
    assert not cgroup_dirs_of(cid) and not os.path.exists(os.path.join(rt.root, cid))


def _hook_bundle(bundle_factory, stage, *args):
    return bundle_factory(args=["sleep", "600"],
                          config_overrides={"hooks": {stage: [{"path": args[0], "args": list(args)}]}})


KILL_FROM_STATE = "import json, os, sys; os.kill(json.load(sys.stdin)['pid'], 9)"


def test_init_killed_by_a_create_runtime_hook(rt, bundle_factory, leak_check, tmp_path):
    """The init dies while create waits for it (the runtime hooks run between
    the rootfs and the pivot): create fails in one line and leaves nothing."""
    import sys
    b = _hook_bundle(bundle_factory, "createRuntime", sys.executable, "-c", KILL_FROM_STATE)
    cid = _cid(leak_check)
    watch = new_watch([tmp_path], os.path.dirname(rt.root), cid)
    r = rt.create(cid, b)
    msg = check_result(r)
    assert r.returncode == 1 and msg.startswith("unable to start container process"), msg
    leaks = host_leaks(watch, cid, rt.root)
    assert not leaks, leaks


def test_init_killed_while_in_a_create_container_hook(rt, bundle_factory, leak_check, tmp_path):
    """The init killed from outside in the middle of its own setup (blocked
    in a createContainer hook): create fails in one line, leaves nothing."""
    b = _hook_bundle(bundle_factory, "createContainer", "/bin/sh", "-c", "sleep 30")
    cid = _cid(leak_check)
    watch = new_watch([tmp_path], os.path.dirname(rt.root), cid)
    state = os.path.join(rt.root, cid, "state.json")
    err = tmp_path / "create.err"
    with open(os.devnull, "wb") as null, open(err, "w") as errf:
        p = subprocess.Popen(rt.argv("create", "--bundle", b, cid), stdout=null, stderr=errf)
        init = wait_until(lambda: init_with_child(state), 10)
        assert init, "the init never reached its createContainer hook"
        os.kill(init, signal.SIGKILL)
        assert p.wait(30) == 1
    r = subprocess.CompletedProcess(p.args, 1, "", err.read_text())
    assert check_result(r).startswith("unable to start container process"), r.stderr
    leaks = host_leaks(watch, cid, rt.root)
    assert not leaks, leaks


def test_rootfs_moved_away_during_create(rt, bundle_factory, leak_check, tmp_path):
    """A createRuntime hook renames the rootfs while the init is between its
    mounts and the pivot: whatever create answers, it is one line, and
    delete --force leaves nothing."""
    b = bundle_factory(args=["sleep", "600"])
    moved = b.rootfs + ".gone"
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/mv", "args": ["mv", b.rootfs, moved]}]}
    b.write_config()
    cid = _cid(leak_check)
    watch = new_watch([tmp_path], os.path.dirname(rt.root), cid)
    r = rt.create(cid, b)
    check_result(r)
    if r.returncode == 0:
        assert rt.start(cid).returncode == 0
    _force_delete_leaves_nothing(rt, cid, watch, "rootfs moved during create")


# --------------------------------------------------------------------- the state root

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 512 KiB tmpfs with 64 inodes in the test's tmp dir, unmounted afterwards."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,nr_inodes=64,mode=0711", "tmpfs",
                    str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("full", ["blocks", "inodes"])
def test_full_state_root(pyrunc, make_runtime, bundle, small_tmpfs, leak_check, tmp_path, full):
    from tests.container.helpers import Runtime
    rt = Runtime(pyrunc, small_tmpfs / "root", watch=leak_check)
    filler = small_tmpfs / "filler"
    fill_blocks(filler) if full == "blocks" else fill_inodes(filler)
    cid = _cid(leak_check)
    watch = new_watch([tmp_path], small_tmpfs / "root", cid)
    r = rt.create(cid, bundle)
    msg = check_result(r)
    assert r.returncode == 1 and "no space left on device" in msg and rt.root in msg, msg
    assert os.listdir(rt.root) == []
    leaks = host_leaks(watch, cid, rt.root)
    assert not leaks, leaks


def test_state_root_fills_up_while_a_container_lives(pyrunc, bundle, small_tmpfs, leak_check,
                                                     tmp_path):
    from tests.container.helpers import Runtime
    rt = Runtime(pyrunc, small_tmpfs / "root", watch=leak_check)
    cid = _cid(leak_check)
    assert rt.create(cid, bundle).returncode == 0
    fill_inodes(small_tmpfs / "dirs")
    fill_blocks(small_tmpfs / "filler")
    s = rt.start(cid)
    assert s.returncode == 0, s.stderr
    assert rt.state_json(cid)["status"] == "running"
    watch = new_watch([tmp_path], small_tmpfs / "root", cid)
    _force_delete_leaves_nothing(rt, cid, watch, "delete on a full state root")


def test_read_only_state_root(pyrunc, bundle, small_tmpfs, leak_check, tmp_path):
    from tests.container.helpers import Runtime
    rt = Runtime(pyrunc, small_tmpfs / "root", watch=leak_check)
    keep = _cid(leak_check)
    assert rt.create(keep, bundle).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    try:
        cid = _cid(leak_check)
        r = rt.create(cid, bundle)
        msg = check_result(r)
        assert r.returncode == 1 and "read-only file system" in msg, msg
        assert not processes_naming(cid) and not cgroup_dirs_of(cid)
        # The container created before still answers.  delete --force stops
        # it and removes its cgroups, then cannot remove its state dir: it
        # says so in one line, and the state left is a consistent "stopped".
        assert rt.state_json(keep)["status"] == "created"
        d = rt.delete(keep, force=True)
        msg = check_result(d)
        assert d.returncode == 1 and "read-only file system" in msg, msg
        assert rt.state_json(keep)["status"] == "stopped"
        assert wait_until(lambda: not processes_naming(keep)) and not cgroup_dirs_of(keep)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_tmpfs)], check=True)
    watch = new_watch([tmp_path], small_tmpfs / "root", keep)
    _force_delete_leaves_nothing(rt, keep, watch, "delete after the state root is writable again")


# --------------------------------------------------------------------- races on one id

def test_race_create_and_force_delete(rt, bundle, leak_check, tmp_path):
    for _ in range(6):
        cid = _cid(leak_check)
        created, deleted = race(lambda: rt.create(cid, bundle), lambda: rt.delete(cid, force=True))
        assert deleted.returncode == 0, deleted.stderr
        status = status_of(rt, cid)
        if created.returncode == 0:
            # delete ran first (nothing to delete) or after create (deleted it)
            assert status in ("created", None), status
        else:
            # the delete took the id from under create: create failed, nothing is left
            assert status is None
        assert not processes_naming(cid) or status == "created"
        watch = new_watch([tmp_path], os.path.dirname(rt.root), cid)
        _force_delete_leaves_nothing(rt, cid, watch, "create vs delete --force")


def test_race_start_and_kill(rt, bundle, leak_check, tmp_path):
    for _ in range(6):
        cid = _cid(leak_check)
        assert rt.create(cid, bundle).returncode == 0
        started, killed = race(lambda: rt.start(cid), lambda: rt.kill(cid, "KILL"))
        # whichever came first, SIGKILL ends the container in the end
        assert wait_until(lambda: status_of(rt, cid) == "stopped"), status_of(rt, cid)
        if started.returncode:
            assert check_result(started) in ("cannot start a container that has stopped",) or \
                check_result(started).startswith("cannot start container"), started.stderr
        if killed.returncode:
            assert check_result(killed) == "container not running", killed.stderr
        d = rt.delete(cid)
        assert d.returncode == 0, d.stderr
        assert not processes_naming(cid) and not cgroup_dirs_of(cid)


def test_race_delete_and_delete(rt, bundle, leak_check, tmp_path):
    for _ in range(6):
        cid = _cid(leak_check)
        assert rt.create(cid, bundle).returncode == 0
        rt.kill(cid, "KILL")
        assert wait_until(lambda: status_of(rt, cid) == "stopped")
        a, b = race(lambda: rt.delete(cid), lambda: rt.delete(cid))
        codes = sorted([a.returncode, b.returncode])
        assert codes in ([0, 0], [0, 1]), (a, b)
        for r in (a, b):
            if r.returncode:
                assert check_result(r) == f"container {cid} does not exist"
        assert status_of(rt, cid) is None
        assert not processes_naming(cid) and not cgroup_dirs_of(cid)


def test_race_kill_all_and_force_delete(rt, bundle, leak_check, tmp_path):
    for _ in range(6):
        cid = _cid(leak_check)
        assert rt.create(cid, bundle).returncode == 0
        assert rt.start(cid).returncode == 0
        killed, deleted = race(lambda: rt.kill(cid, "KILL", all=True),
                                lambda: rt.delete(cid, force=True))
        assert deleted.returncode == 0, deleted.stderr
        if killed.returncode:
            assert check_result(killed) in (f"container {cid} does not exist",
                                            "container not running"), killed.stderr
        assert status_of(rt, cid) is None
        assert wait_until(lambda: not processes_naming(cid)) and not cgroup_dirs_of(cid)
