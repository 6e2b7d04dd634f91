"""The test infrastructure must be able to fail: the leak checker has to see
each kind of leak (and clean it up), and the differential harness has to see a
runtime that behaves differently from runc."""
import os
import subprocess
import sys
import textwrap

import pytest

from tests.container import helpers
from tests.container.leaks import LeakWatch
from tests.probe.harness import diff_probes, probe_args, probe_files, run_probe


def _mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


@pytest.fixture
def watch(tmp_path):
    """A second LeakWatch on a sub-dir, so the autouse one still guards this test."""
    area = tmp_path / "area"
    (area / "state").mkdir(parents=True)
    return LeakWatch(dirs=[str(area)], state_root=str(area / "state"), grace=0.3).start()


def test_catches_leaked_mount(watch, tmp_path):
    target = tmp_path / "area" / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "leaktest", str(target)], check=True)
    leaks = watch.check()
    assert any(f"mount left at {target}" in line for line in leaks), leaks
    watch.cleanup()
    assert not _mounted(target)
    assert watch.check() == []


def test_catches_leaked_state_dir(watch):
    leftover = os.path.join(watch.state_root, "runc", "pt-gone")
    os.makedirs(leftover)
    with open(os.path.join(leftover, "state.json"), "w") as f:
        f.write("{}")
    leaks = watch.check()
    assert any("state root not empty" in line and "pt-gone" in line for line in leaks), leaks
    watch.cleanup()
    assert watch.check() == []


def test_catches_leaked_fd_and_process(watch):
    fd = os.open("/dev/null", os.O_RDONLY)
    child = subprocess.Popen(["sleep", "60"])
    try:
        leaks = watch.check()
        assert any(f"fd {fd} left open" in line for line in leaks), leaks
        assert any(f"process {child.pid} still running" in line for line in leaks), leaks
        watch.cleanup()
        assert child.wait(timeout=10) == -9
        with pytest.raises(OSError):
            os.fstat(fd)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_catches_created_container(watch, runc, busybox_rootfs, base_config, tmp_path):
    """A real leak: `runc create` without delete leaves state, an init process
    and cgroups; cleanup must remove all of them."""
    rt = helpers.Runtime(runc, os.path.join(watch.state_root, "runc"), watch=watch)
    bundle = helpers.make_bundle(tmp_path / "area" / "b", busybox_rootfs, base_config,
                                 args=["sleep", "60"])
    cid = helpers.new_container_id()
    r = rt.create(cid, bundle)
    assert r.returncode == 0, r.stderr
    leaks = watch.check()
    assert any("state root not empty" in line for line in leaks), leaks
    assert any("still running" in line for line in leaks), leaks
    assert any("cgroup left: " in line and cid in line for line in leaks), leaks
    watch.cleanup()
    assert watch.check() == []


def test_autouse_fixture_fails_a_leaky_test(tmp_path):
    """End to end: a nested pytest whose tests leak must fail, and leave nothing."""
    nested = tmp_path / "nested"
    nested.mkdir()
    (nested / "conftest.py").write_text("from tests.container.conftest import *  # noqa\n")
    (nested / "test_leaky.py").write_text(textwrap.dedent("""
        import subprocess

        def test_leaks_mount(tmp_path):
            (tmp_path / "m").mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "leaky", str(tmp_path / "m")], check=True)

        def test_leaks_state(state_root):
            (state_root / "runc" / "pt-x").mkdir(parents=True)

        def test_clean(tmp_path):
            pass
    """))
    env = dict(os.environ, PYTHONPATH=str(helpers.REPO))
    env.pop("PYTEST_ADDOPTS", None)   # e.g. CI's --basetemp, which is the outer run's
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(nested), "--basetemp", str(tmp_path / "bt"), str(nested)],
                       cwd=nested, env=env, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "3 passed, 2 errors" in out, out
    assert "mount left at" in out and "state root not empty" in out, out
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


def test_diff_probes_reports_each_kind_of_difference():
    a = {"uid": [0, 0, 0, 0], "mounts": [{"path": "/a"}, {"path": "/b"}],
         "caps": {"CapEff": "1", "CapBnd": "1"}, "hostname": "x", "domainname": "d"}
    b = {"uid": [0, 0, 0, 0], "mounts": [{"path": "/a"}, {"path": "/c"}],
         "caps": {"CapEff": "2", "CapBnd": "1"}, "hostname": "y", "domainname": "e"}
    out = "\n".join(diff_probes(a, b, ("runc", "pyrunc"), ignore={"domainname"}))
    assert 'only runc: {"path": "/b"}' in out and 'only pyrunc: {"path": "/c"}' in out
    assert 'CapEff: runc="1"  pyrunc="2"' in out and "CapBnd" not in out
    assert 'hostname: runc="x"  pyrunc="y"' in out
    assert "domainname" not in out and "uid" not in out
    assert diff_probes(a, a) == []


def test_harness_sees_a_deviating_runtime(runc, make_runtime, bundle_factory, base_config,
                                          container_id, tmp_path):
    """A "runtime" that is runc with a lower stack limit must show up in the diff."""
    fake = tmp_path / "fake-runc"
    fake.write_text(f"#!/bin/sh\nulimit -s 4096\nexec {runc} \"$@\"\n")
    fake.chmod(0o755)
    results = []
    for binary, name in ((runc, "runc"), (fake, "fake")):
        bundle = bundle_factory(args=probe_args(base_config, readonly=["/"]), files=probe_files())
        res = run_probe(make_runtime(binary, name=name), bundle, container_id())
        assert res.returncode == 0 and res.probe, res.describe()
        results.append(res.probe)
    diffs = diff_probes(*results, ("runc", "fake"))
    assert any("RLIMIT_STACK" in line and "4194304" in line for line in diffs), diffs


def test_busybox_rootfs_needs_busybox(tmp_path):
    from pyrunc.demo import build_busybox_rootfs
    with pytest.raises(FileNotFoundError, match="install busybox-static"):
        build_busybox_rootfs(tmp_path / "r", busybox=str(tmp_path / "no-busybox"))


def test_demo_bundle_runs_under_runc(runc, tmp_path, state_root):
    """The demo bundle is valid and its report works (under runc, the reference)."""
    from pyrunc import demo
    r = subprocess.run([sys.executable, "-m", "pyrunc.demo", "--runtime", runc,
                        "--root", str(state_root / "runc"), str(tmp_path / "demo")], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, cwd=helpers.REPO)
    assert r.returncode == 0, r.stderr
    assert "Hello from inside a pyrunc container!" in r.stdout
    assert f"hostname : {demo.DEMO_ID}" in r.stdout and "pid      : 1" in r.stdout
    assert os.path.islink(tmp_path / "demo" / "rootfs" / "bin" / "sh")
    assert not os.path.islink(tmp_path / "demo" / "rootfs" / "bin" / "busybox")
