"""Load: many containers at once, and many one after another.

- 50 containers (unique ids, one shared read-only bundle) created, started
  and deleted concurrently, one thread per container;
- a churn loop of 200 create/start/delete --force cycles on 4 workers.

Every command must succeed, every container must reach "created" then
"running", and afterwards no state dir, cgroup, mount, process or fd of
pytest may remain.  Sized to run in about a minute on 2 cores; the figures
(containers/s, failures, wall time) are printed (pytest -s) and attached to
the test report as user properties.  PYRUNC_LOAD_CONCURRENT and
PYRUNC_LOAD_CHURN make a local run bigger.
"""
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.container.faultkit import cgroup_dirs_of, host_leaks, new_watch, processes_naming

pytestmark = pytest.mark.root

CONCURRENT = int(os.environ.get("PYRUNC_LOAD_CONCURRENT", "50"))
CHURN = int(os.environ.get("PYRUNC_LOAD_CHURN", "200"))
CHURN_WORKERS = 4


@pytest.fixture
def rt(pyrunc, make_runtime, tmp_path):
    r = make_runtime(pyrunc, name="pyrunc", timeout=180)
    r.log_path = str(tmp_path / "pyrunc-log.json")   # outside the state root
    return r


@pytest.fixture
def bundle(bundle_factory):
    return bundle_factory(args=["sleep", "600"])


def _ids(leak_check, n, prefix):
    ids = [f"{prefix}{i}-{secrets.token_hex(3)}" for i in range(n)]
    leak_check.ids.update(ids)
    return ids


def _failures(results):
    return [(r.args[-1], r.returncode, r.stderr.strip()) for r in results if r.returncode != 0]


def _report(record_property, name, **figures):
    for k, v in figures.items():
        record_property(f"{name}.{k}", v)
    print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def _nothing_left(rt, ids, watch):
    left = [c for c in ids if os.path.lexists(os.path.join(rt.root, c))]
    assert not left, f"state dirs left: {left[:5]}"
    cgroups = [d for c in ids for d in cgroup_dirs_of(c)]
    assert not cgroups, f"cgroups left: {cgroups[:5]}"
    procs = processes_naming(*ids)
    assert not procs, f"processes left: {list(procs.items())[:5]}"
    leaks = host_leaks(watch)
    assert not leaks, leaks


def test_fifty_concurrent_containers(rt, bundle, leak_check, tmp_path, record_property):
    ids = _ids(leak_check, CONCURRENT, "ld")
    watch = new_watch([tmp_path], os.path.dirname(rt.root), *ids)
    with ThreadPoolExecutor(CONCURRENT) as pool:
        t0 = time.monotonic()
        created = list(pool.map(lambda c: rt.create(c, bundle), ids))
        t1 = time.monotonic()
        assert not _failures(created), _failures(created)
        states = list(pool.map(rt.state_json, ids))
        assert {s["status"] for s in states} == {"created"}, states
        assert len({s["pid"] for s in states}) == CONCURRENT
        t2 = time.monotonic()
        started = list(pool.map(rt.start, ids))
        t3 = time.monotonic()
        assert not _failures(started), _failures(started)
        states = list(pool.map(rt.state_json, ids))
        assert {s["status"] for s in states} == {"running"}, states
        t4 = time.monotonic()
        deleted = list(pool.map(lambda c: rt.delete(c, force=True), ids))
        t5 = time.monotonic()
    assert not _failures(deleted), _failures(deleted)
    _nothing_left(rt, ids, watch)
    total = (t1 - t0) + (t3 - t2) + (t5 - t4)
    _report(record_property, "concurrent", containers=CONCURRENT, failures=0,
            create_s=round(t1 - t0, 2), start_s=round(t3 - t2, 2), delete_s=round(t5 - t4, 2),
            containers_per_s=round(CONCURRENT / total, 1))


def _cycle(rt, bundle, cid):
    """One container's life; the first failing command, or None."""
    for r in (rt.create(cid, bundle), rt.start(cid), rt.delete(cid, force=True)):
        if r.returncode != 0:
            rt.delete(cid, force=True)
            return (cid, r.args[r.args.index(cid) - 1] if cid in r.args else "?", r.stderr.strip())
    return None


def test_churn_two_hundred_containers(rt, bundle, leak_check, tmp_path, record_property):
    ids = _ids(leak_check, CHURN, "ch")
    watch = new_watch([tmp_path], os.path.dirname(rt.root), *ids)
    t0 = time.monotonic()
    with ThreadPoolExecutor(CHURN_WORKERS) as pool:
        failures = [f for f in pool.map(lambda c: _cycle(rt, bundle, c), ids) if f]
    elapsed = time.monotonic() - t0
    _report(record_property, "churn", containers=CHURN, workers=CHURN_WORKERS,
            failures=len(failures), wall_s=round(elapsed, 1),
            containers_per_s=round(CHURN / elapsed, 1))
    assert not failures, failures[:5]
    _nothing_left(rt, ids, watch)
