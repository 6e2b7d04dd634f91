"""Commands on one container id from several clients at once are serialised
(a lock per container): exactly one wins, the others fail with runc's words,
no traceback, and the end state is consistent."""

import pytest

from tests.container.faultkit import race_calls
from tests.container.realkit import error_line, status_of, wait_for


@pytest.fixture
def rt(pyrunc, make_runtime):
    return make_runtime(pyrunc, name="pyrunc")


def _create(rt, cid, bundle):
    r = rt.create(cid, bundle)
    assert r.returncode == 0, f"create failed: {r.stderr}"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_concurrent_start_and_delete(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    for _ in range(4):
        cid = container_id()
        _create(rt, cid, bundle)
        pid = rt.state_json(cid)["pid"]
        started, deleted = race_calls(lambda: rt.start(cid), lambda: rt.delete(cid))
        for r in (started, deleted):
            assert "Traceback" not in r.stderr, r.stderr
        # serialised: exactly one wins, the loser explains why in one line
        assert (started.returncode == 0) != (deleted.returncode == 0), (started, deleted)
        if started.returncode == 0:
            assert error_line(deleted.stderr) == \
                f"cannot delete container {cid} that is not stopped: running"
            assert status_of(rt, cid) == "running"
            assert rt.delete(cid, force=True).returncode == 0
        else:
            assert error_line(started.stderr) == f"container {cid} does not exist"
            assert rt.state(cid).returncode == 1
        assert wait_for(lambda: not _alive(pid), 5)


def test_concurrent_starts_one_wins(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    _create(rt, cid, bundle)
    results = race_calls(*[lambda: rt.start(cid)] * 4)
    assert sorted(r.returncode for r in results) == [0, 1, 1, 1], results
    for r in results:
        if r.returncode:
            assert error_line(r.stderr) == "cannot start an already running container"
    assert rt.delete(cid, force=True).returncode == 0


def test_concurrent_force_deletes(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    assert rt.run(cid, bundle, "-d").returncode == 0
    results = race_calls(*[lambda: rt.delete(cid, force=True)] * 4)
    assert [(r.returncode, r.stderr) for r in results] == [(0, "")] * 4
    assert rt.state(cid).returncode == 1


def test_concurrent_creates_of_one_id(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    results = race_calls(*[lambda: rt.create(cid, bundle)] * 3)
    assert sorted(r.returncode for r in results) == [0, 1, 1], results
    for r in results:
        if r.returncode:
            assert "already exists" in error_line(r.stderr)
    assert status_of(rt, cid) == "created"
    assert rt.delete(cid).returncode == 0
