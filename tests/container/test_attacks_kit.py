"""Shared pieces of the attack tests (tests/container/test_attacks_*.py).

Each attack of design.md §4 is mounted against a real container.  The host
side of an attack is a "victim" directory in tmp_path holding one file,
VICTIM_FILE: the tests assert it is untouched and that no mount landed on
it.  A mount that escapes to a host path lands in the container's mount
namespace (private below an rslave root), so the host's mountinfo never shows
it; watch_victim() binds the victim into the container at /seen *after*
every other mount -- a later volume, as in the CVE-2021-30465 exploit -- so
what was mounted on it shows up in `ls -A /seen`.

Where runc 1.1.5 (Debian's, with some fixes backported) is vulnerable, the
tests run it too and xfail with the CVE when the attack works: the same
assertion catching a real vulnerable runtime.

How each test was shown to fail without its defence: a weakened copy of the
package in a scratch dir -- /tmp/weak-NAME/pyrunc, a copy of pyrunc/ with the
one defence edited out, plus a pyrunc-bin script putting it first on
sys.path and a specs/ link -- run with PYRUNC=/tmp/weak-NAME/pyrunc-bin.
Never a switch in production code.  The docstring of each test says what was
weakened and what the test then reported.
"""
import os

import pytest

from tests.container.realkit import wait_for

VICTIM_FILE = "host-only-file"


@pytest.fixture
def rt(pyrunc, make_runtime):
    return make_runtime(pyrunc, name="pyrunc")


@pytest.fixture(params=["pyrunc", "runc"])
def any_rt(request, make_runtime):
    return make_runtime(request.getfixturevalue(request.param), name=request.param)


@pytest.fixture
def victim(tmp_path):
    """A host directory the container must never reach."""
    v = tmp_path / "victim"
    v.mkdir()
    (v / VICTIM_FILE).write_text("host data\n")
    return v


def assert_untouched(victim):
    assert sorted(os.listdir(victim)) == [VICTIM_FILE], \
        f"the host directory changed: {sorted(os.listdir(victim))}"
    assert (victim / VICTIM_FILE).read_text() == "host data\n"
    assert not host_mounts_under(victim), f"a mount landed on the host: {host_mounts_under(victim)}"


def host_mounts_under(path):
    path = str(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


def link_to(victim, form):
    """A symlink target naming the victim: its absolute host path, or ../ climbing
    far enough up from anywhere in the bundle to reach the host's / first."""
    if form == "absolute":
        return str(victim)
    return "../" * 12 + str(victim).lstrip("/")


def watch_victim(bundle, victim):
    """Bind the victim into the container at /seen, after every other mount."""
    bundle.config["mounts"].append({"destination": "/seen", "type": "bind",
                                    "source": str(victim), "options": ["rbind", "ro"]})


SEEN = "echo seen: $(ls -A /seen)"


def assert_seen_clean(out):
    seen = next((ln for ln in out.splitlines() if ln.startswith("seen:")), None)
    assert seen is not None, out
    assert seen.split() == ["seen:", VICTIM_FILE], f"a mount escaped onto the victim: {seen}"


def no_dev_tmpfs(bundle):
    """The image's own /dev is used (a config without the usual /dev tmpfs)."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]


def run_detached(rt, cid, bundle):
    r = rt.run(cid, bundle, "-d")
    assert r.returncode == 0, r.stderr


def stop(rt, cid):
    rt.kill(cid, "KILL")
    wait_for(lambda: rt.delete(cid).returncode == 0, timeout=5)
    rt.delete(cid, force=True)
