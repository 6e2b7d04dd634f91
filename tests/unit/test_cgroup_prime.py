"""pyrunc.cgroups.prime: the no-op self-migration that starts the kernel's wait early."""
import pytest

from pyrunc.cgroups import prime
from pyrunc.cgroups.host import HostCgroups, Hierarchy, build
from tests.unit.test_cgroup_host import hybrid, legacy, v2


def test_the_file_is_our_own_cgroups_procs_v2_first():
    assert prime.own_procs_file(hybrid()) == "/sys/fs/cgroup/unified/cgroup.procs"
    assert prime.own_procs_file(v2()) == \
        "/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope/cgroup.procs"
    # no cgroup2: the first v1 hierarchy, at our cgroup in it
    assert prime.own_procs_file(legacy()) == \
        f"{legacy().v1[0].own_dir()}/cgroup.procs"
    assert prime.own_procs_file(HostCgroups()) is None


def test_never_a_cgroup_we_are_not_in():
    """Outside the mount's root (a cgroup namespace seen from elsewhere) own_dir()
    falls back to the mount's root: writing there would really move us."""
    outside_v2 = HostCgroups(v2_mount="/sys/fs/cgroup", v2_root="/ctr", v2_own="/other")
    assert prime.own_procs_file(outside_v2) is None
    inside_v2 = HostCgroups(v2_mount="/sys/fs/cgroup", v2_root="/ctr", v2_own="/ctr/sub")
    assert prime.own_procs_file(inside_v2) == "/sys/fs/cgroup/sub/cgroup.procs"
    outside_v1 = HostCgroups(v1=(Hierarchy(("pids",), "/sys/fs/cgroup/pids", "/a", "/b"),))
    assert prime.own_procs_file(outside_v1) is None


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(prime, "_running", [])


def test_start_writes_0_on_a_thread_once(tmp_path, fresh, monkeypatch):
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    monkeypatch.setattr(prime, "own_procs_file", lambda host: str(procs))
    prime.start(HostCgroups())
    prime.wait()
    assert procs.read_text() == "0"   # "0": the writing process itself
    procs.write_text("")
    prime.start(HostCgroups())        # once per process
    prime.wait()
    assert procs.read_text() == ""


def test_failures_are_ignored(tmp_path, fresh, monkeypatch):
    monkeypatch.setattr(prime, "own_procs_file", lambda host: str(tmp_path / "missing" / "x"))
    prime.start(HostCgroups())
    prime.wait()   # the thread ended although open() failed


def test_no_cgroupfs_no_thread(fresh):
    prime.start(build("", ""))
    assert prime._running == []
    prime.wait()
