"""Fixtures for tests that run real containers (as root).

- runc / pyrunc: paths of the two runtimes (pyrunc from $PYRUNC or .venv/bin/pyrunc)
- state_root: a private, per-test --root parent dir
- make_runtime(binary, name=None, log=False): a helpers.Runtime rooted in state_root
- container_id(): a fresh id, registered with the leak checker
- bundle_factory(config_overrides=None, args=None, files=None, name=None, config=None):
  a bundle on a hard-linked copy of the session's busybox rootfs, terminal=false
- every test is wrapped by an autouse leak check (see leaks.LeakWatch)
"""
import os

import pytest

from pyrunc.demo import build_busybox_rootfs, default_config
from tests.container import helpers
from tests.container.leaks import LeakWatch


@pytest.fixture(scope="session")
def runc():
    if not os.access(helpers.RUNC, os.X_OK):
        pytest.skip(f"{helpers.RUNC} is not installed (apt-get install runc)")
    return helpers.RUNC


@pytest.fixture(scope="session")
def pyrunc():
    path = helpers.pyrunc_path()
    problem = helpers.runtime_problem(path)
    if problem:
        pytest.skip(problem)
    return path


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory):
    try:
        return build_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def base_config():
    return default_config(rootless=False)


@pytest.fixture
def state_root(tmp_path):
    root = tmp_path / "state"
    root.mkdir()
    return root


@pytest.fixture(autouse=True)
def leak_check(request, tmp_path, state_root, tmp_path_factory):
    """Fail the test if it left processes, mounts, cgroups, fds or state behind.

    Leaks are recorded first, then cleaned up, then reported, so the next test
    starts clean and this one still fails.
    """
    watch = LeakWatch(dirs=[str(tmp_path), str(tmp_path_factory.getbasetemp())],
                              state_root=str(state_root)).start()
    yield watch
    leaks = watch.check()
    if leaks:
        watch.cleanup()
        pytest.fail("test leaked:\n  " + "\n  ".join(leaks), pytrace=False)


@pytest.fixture
def make_runtime(state_root, leak_check):
    def make(binary, name=None, log=False, timeout=60):
        name = name or os.path.basename(str(binary))
        return helpers.Runtime(binary, state_root / name, name=name, log=log,
                               timeout=timeout, watch=leak_check)
    return make


@pytest.fixture
def container_id(leak_check):
    def new():
        cid = helpers.new_container_id()
        leak_check.ids.add(cid)
        return cid
    return new


@pytest.fixture
def bundle_factory(tmp_path, busybox_rootfs, base_config):
    counter = iter(range(1000))

    def make(config_overrides=None, args=None, files=None, name=None, config=None):
        """config replaces the default config as the base for config_overrides."""
        dest = tmp_path / (name or f"bundle{next(counter)}")
        return helpers.make_bundle(dest, busybox_rootfs, config or base_config, args=args,
                                   overrides=config_overrides, files=files)
    return make
