"""The cgroup v2 suite (tests/cgroup2_guest), run once per session where v2 is
real: natively on a pure v2 host, else in a QEMU guest (tests/cgroup2/).

A guest that cannot be set up or booted is a failure, never a skip: CI must
run the v2 suite every time, and this host kind (cgroup v1 hybrid) has no
other way to test the v2 controllers.
"""
import warnings

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
    if r.skipped:   # the child's skips are otherwise invisible in the host's report
        reasons = sorted({reason for _, reason in r.skipped})
        warnings.warn(f"cgroup v2 suite ({r.mode}): {len(r.skipped)} of {r.counts['tests']} "
                      f"tests skipped: " + "; ".join(reasons), UserWarning)


def test_cgroup2_environment_was_proven(cgroup2_suite):
    """The guest really is pure v2 and runs pyrunc: those tests passed, not
    skipped or deselected, whatever else the suite skips."""
    r = cgroup2_suite
    passed = {name.rpartition("::")[2] for name in r.passed}
    missing = [t for t in ENVIRONMENT_TESTS if t not in passed]
    if missing:
        pytest.fail(f"not passed in the cgroup v2 suite ({r.mode}): {missing}\n"
                    + r.describe(), pytrace=False)


# ------------------------------------------------- the runner's own pieces

_HYBRID = """\
30 23 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw shared:14 - cgroup cgroup rw,memory
"""
_PURE_V2 = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
"""


@pytest.mark.parametrize("text, pure", [(_HYBRID, False), (_PURE_V2, True),
                                        (_PURE_V2 + _HYBRID.splitlines()[2] + "\n", False)],
                         ids=["hybrid", "pure-v2", "v2-plus-v1"])
def test_host_is_pure_v2(tmp_path, text, pure):
    path = tmp_path / "mountinfo"
    path.write_text(text)
    assert suite.host_is_pure_v2(str(path)) is pure


def test_junit_report_is_read(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
        '<testcase classname="t.m" name="a"/>'
        '<testcase classname="t.m" name="b"><failure message="x"/></testcase>'
        '<testcase classname="t.m" name="c"><skipped message="no writer"/></testcase>'
        '</testsuite></testsuites>')
    counts, passed, skipped = suite._read_junit(path)
    assert counts == {"tests": 3, "failures": 1, "errors": 0, "skipped": 1}
    assert passed == ("t.m::a",)
    assert skipped == (("t.m::c", "no writer"),)
    result = suite.SuiteResult("guest", 125, "boom", 1.0, counts, passed, skipped)
    assert not result.ok and "could not be set up or booted" in result.describe()
    assert not suite.SuiteResult("guest", 0, "", 1.0).ok   # ran no test: not a pass
