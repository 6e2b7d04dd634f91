"""The cgroup v2 suite (tests/cgroup2_guest), run once per session where v2 is
real: natively on a pure v2 host, else in a QEMU guest (tests/cgroup2/).

A guest that cannot be set up or booted is a failure, never a skip: CI must
run the v2 suite every time, and this host kind (cgroup v1 hybrid) has no
other way to test the v2 controllers.
"""
import pytest

from tests.cgroup2 import suite

ENVIRONMENT_TESTS = ("test_sys_fs_cgroup_is_pure_cgroup2_with_controllers",
                     "test_pyrunc_runs_a_busybox_container")


@pytest.fixture(scope="session")
def cgroup2_suite(tmp_path_factory):
    return suite.run_suite(tmp_path_factory.mktemp("cgroup2-suite"))


def test_cgroup2_suite_passes(cgroup2_suite):
    r = cgroup2_suite
    if not r.ok:
        pytest.fail(r.describe(), pytrace=False)


def test_cgroup2_environment_was_proven(cgroup2_suite):
    """The guest really is pure v2 and runs pyrunc: those tests passed, not
    skipped or deselected, whatever else the suite skips."""
    r = cgroup2_suite
    passed = {name.rpartition("::")[2] for name in r.passed}
    missing = [t for t in ENVIRONMENT_TESTS if t not in passed]
    if missing:
        pytest.fail(f"not passed in the cgroup v2 suite ({r.mode}): {missing}\n"
                    + r.describe(), pytrace=False)
