"""Fixtures for the cgroup v2 suite, which runs only where /sys/fs/cgroup is a
pure v2 hierarchy: inside the QEMU guest, or natively on a v2 host.  Launched
by tests/container/test_cgroup2_suite.py through tests/cgroup2/suite.py, which
sets PYRUNC_CG2_SUITE=1; without it nothing here is collected.

Every container goes in a cgroup under one per-session parent, named by
linux.cgroupsPath, so the tests know where to read its counters.  Tests that
need pyrunc's cgroup writer ask for the `cgroup_writer` fixture, which skips
(with the reason) until `pyrunc run` puts a container with a memory limit in
its cgroup.
"""
import os
import secrets

import pytest

from tests.cgroup2_guest.support import CGROUP_ROOT, MiB, Containers, own_cgroup
from tests.container import helpers

if os.environ.get("PYRUNC_CG2_SUITE") != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def pyrunc_bin():
    path = helpers.pyrunc_path()
    problem = helpers.runtime_problem(path)
    if problem:   # the suite exists to exercise pyrunc: never skip on this
        pytest.fail(problem, pytrace=False)
    return path


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    from pyrunc.demo import build_busybox_rootfs
    return build_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="session")
def cgroup_parent():
    """Absolute cgroupsPath prefix for this session; removed at the end."""
    parent = f"/pyrunc-cg2-{secrets.token_hex(3)}"
    yield parent
    path = CGROUP_ROOT + parent
    if os.path.isdir(path):   # the runtime removes each container's cgroup, not the parent
        left = sorted(e.name for e in os.scandir(path) if e.is_dir())
        assert not left, f"pyrunc delete left these cgroups under {path}: {left}"
        os.rmdir(path)


@pytest.fixture
def containers(pyrunc_bin, rootfs, tmp_path, cgroup_parent):
    # Process start under TCG emulation is ~40x slower than on the host.
    rt = helpers.Runtime(pyrunc_bin, tmp_path / "state", name="pyrunc", timeout=300)
    c = Containers(rt, rootfs, tmp_path, cgroup_parent)
    yield c
    c.cleanup()


@pytest.fixture(scope="session")
def cgroup_writer(pyrunc_bin, rootfs, tmp_path_factory, cgroup_parent):
    """Skip unless pyrunc puts a container with a memory limit in its cgroup.

    A container placed somewhere other than its cgroupsPath is a failure, not a
    skip: that is a writer that landed and is wrong.
    """
    tmp = tmp_path_factory.mktemp("writer-probe")
    rt = helpers.Runtime(pyrunc_bin, tmp / "state", name="pyrunc", timeout=300)
    c = Containers(rt, rootfs, tmp, cgroup_parent)
    cid, bundle = c.new(["cat", "/proc/self/cgroup"], resources={"memory": {"limit": 64 * MiB}})
    try:
        r = c.run_kept(cid, bundle)
        assert r.returncode == 0, (
            f"pyrunc run of a container with a memory limit failed ({r.returncode}): {r.stderr}")
        placed = r.stdout.strip().partition("0::")[2].strip()
        want = f"{cgroup_parent}/{cid}"
        memory_max = os.path.join(c.cgroup_dir(cid), "memory.max")
        # Not moved: still in the cgroup it inherited from us (via pyrunc run).
        if placed in ("", own_cgroup()) and not os.path.exists(memory_max):
            pytest.skip("cgroup writer missing: pyrunc ran a container with "
                        "linux.resources.memory.limit in cgroup "
                        f"{placed or '?'!r} and created no {memory_max}")
        assert placed == want, f"container ran in cgroup {placed!r}, its cgroupsPath is {want!r}"
        assert os.path.exists(memory_max), f"{memory_max} missing though the container ran there"
    finally:
        c.cleanup()
