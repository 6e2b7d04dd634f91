"""The runner's promise: a pure cgroup v2 hierarchy with the controllers the
suite needs, and a pyrunc that runs a busybox container here.  Needs no
cgroup writer, so these pass today and prove the guest works."""
import os

from tests.cgroup2_guest.support import CGROUP_ROOT, read_text


def _mounts():
    with open("/proc/self/mounts") as f:
        return [line.split()[1:3] for line in f]


def test_sys_fs_cgroup_is_pure_cgroup2_with_controllers():
    mounts = _mounts()
    assert [CGROUP_ROOT, "cgroup2"] in mounts, f"{CGROUP_ROOT} is not cgroup2: {mounts}"
    v1 = [m for m, t in mounts if t == "cgroup"]
    assert not v1, f"cgroup v1 hierarchies are mounted: {v1}"
    controllers = set(read_text(os.path.join(CGROUP_ROOT, "cgroup.controllers")).split())
    assert {"memory", "pids", "cpu"} <= controllers, controllers


def test_pyrunc_runs_a_busybox_container(containers):
    cid, bundle = containers.new(["sh", "-c", "echo hello from $(hostname); id -u"])
    r = containers.rt.run(cid, bundle)
    assert r.returncode == 0, f"pyrunc run failed ({r.returncode}): {r.stderr}"
    assert r.stdout.split() == ["hello", "from", bundle.config["hostname"], "0"], r.stdout
    assert containers.rt.state(cid).returncode != 0, "run without --keep left the container"
