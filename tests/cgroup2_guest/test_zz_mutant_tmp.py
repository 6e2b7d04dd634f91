"""Each limit in linux.resources must bite, seen through the kernel's own
counters in the container's cgroup (never through elapsed time: under TCG
emulation time is meaningless).

Every test here needs pyrunc's cgroup writer and skips (via the
`cgroup_writer` fixture) until `pyrunc run` places containers in cgroups.
Containers run with `pyrunc run --keep`, so the stopped container's cgroup and
its counters stay until `pyrunc delete`.
"""
import os

import pytest

from tests.cgroup2_guest.support import MiB, read_flat, read_text

pytestmark = pytest.mark.usefixtures("cgroup_writer")


def test_memory_max_oom_kills_and_delete_removes_the_cgroup(containers):
    # dd fills a 96 MiB buffer from /dev/zero: every page is touched.
    cid, bundle = containers.new(["dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"],
                                 resources={"memory": {"limit": 512 * MiB}})
    r = containers.run_kept(cid, bundle)
    cg = containers.cgroup_dir(cid)
    assert read_text(f"{cg}/memory.max") == str(32 * MiB)
    events = read_flat(f"{cg}/memory.events")
    assert events["oom_kill"] >= 1, f"memory.events: {events}; run: {r.returncode} {r.stderr}"
    assert r.returncode == 137, f"init should die of SIGKILL, got {r.returncode}: {r.stderr}"
    containers.delete(cid)
    assert not os.path.exists(cg), f"pyrunc delete left the cgroup {cg}"


def test_pids_max_refuses_forks(containers):
    # 16 background sleeps against pids.max=8: the shell's fork fails midway.
    # When the init exits the pid namespace, and so every sleep, goes.
    script = "for i in $(seq 16); do sleep 600 & done; exit 0"
    cid, bundle = containers.new(["sh", "-c", script], resources={"pids": {"limit": 100}})
    r = containers.run_kept(cid, bundle)
    cg = containers.cgroup_dir(cid)
    assert read_text(f"{cg}/pids.max") == "8"
    events = read_flat(f"{cg}/pids.events")
    assert events["max"] >= 1, f"pids.events: {events}; run: {r.returncode} {r.stderr}"
    assert "fork" in r.stderr, f"the shell should report the failed fork: {r.stderr!r}"


def test_cpu_max_throttles(containers):
    # A busy loop for 3 s of wall time under a 10% quota must be throttled in
    # at least one 100 ms period, however slow the (emulated) CPU is.  Not as
    # the init: signals from inside its pid namespace cannot end pid 1.
    spin = "timeout 3 sh -c 'while :; do :; done'; true"
    cid, bundle = containers.new(["sh", "-c", spin],
                                 resources={"cpu": {"quota": 200000, "period": 100000}})
    r = containers.run_kept(cid, bundle)
    cg = containers.cgroup_dir(cid)
    assert read_text(f"{cg}/cpu.max") == "10000 100000"
    stat = read_flat(f"{cg}/cpu.stat")
    assert stat["nr_throttled"] >= 1, f"cpu.stat: {stat}; run: {r.returncode} {r.stderr}"
    assert stat["nr_periods"] >= stat["nr_throttled"]


# /dev/kmsg (c 1:11): writable by root without capabilities, and not in the
# set of devices (null, zero, full, tty, random, urandom, console, ptmx, pts,
# tun) that runtimes allow whatever the config says, so only the config's
# rules decide.  /dev/null is in that set: it must stay usable.
KMSG = {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600,
        "uid": 0, "gid": 0}
DEVICE_SCRIPT = ("echo a > /dev/null && echo null-ok; "
                 "echo pyrunc-cgroup2-device-test > /dev/kmsg && echo kmsg-ok; true")


@pytest.mark.parametrize("allow_kmsg", [False, True], ids=["denied", "allowed"])
def test_device_rules(containers, allow_kmsg):
    rules = [{"allow": True, "access": "rwm"}]
    if allow_kmsg:
        rules.append({"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"})
    cid, bundle = containers.new(["sh", "-c", DEVICE_SCRIPT], resources={"devices": rules},
                                 linux={"devices": [KMSG]})
    r = containers.rt.run(cid, bundle)
    assert r.returncode == 0, f"pyrunc run failed ({r.returncode}): {r.stderr}"
    assert "null-ok" in r.stdout, f"/dev/null must stay writable: {r.stdout!r} {r.stderr!r}"
    if allow_kmsg:
        assert "kmsg-ok" in r.stdout, f"allowed c 1:11 w was refused: {r.stderr!r}"
    else:
        assert "kmsg-ok" not in r.stdout, "a write to /dev/kmsg got past a deny-all rule"
        assert "Operation not permitted" in r.stderr, r.stderr


def test_pause_freezes_the_cgroup(containers):
    probe = containers.rt.call("pause", "--help")
    if "No help topic for 'pause'" in probe.stderr:
        pytest.skip("pyrunc has no pause/resume commands yet")
    cid, bundle = containers.new(["sleep", "600"])
    r = containers.rt.run(cid, bundle, "--detach")
    assert r.returncode == 0, f"pyrunc run -d failed ({r.returncode}): {r.stderr}"
    cg = containers.cgroup_dir(cid)
    r = containers.rt.call("pause", cid)
    assert r.returncode == 0, f"pyrunc pause failed ({r.returncode}): {r.stderr}"
    # `pause` returns once the kernel reports the cgroup frozen.
    assert read_flat(f"{cg}/cgroup.events")["frozen"] == 1
    assert containers.rt.state_json(cid)["status"] == "paused"
    r = containers.rt.call("resume", cid)
    assert r.returncode == 0, f"pyrunc resume failed ({r.returncode}): {r.stderr}"
    assert read_flat(f"{cg}/cgroup.events")["frozen"] == 0
    assert containers.rt.state_json(cid)["status"] == "running"
    containers.delete(cid)
