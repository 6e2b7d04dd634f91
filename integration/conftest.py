"""Real clients driving pyrunc (and runc, the reference): containerd + ctr,
dockerd + docker, podman + conmon, all from Debian's packages.

Session fixtures start each daemon once with private state under one session
directory (short, in /tmp: unix socket paths are limited to 108 bytes) and
stop it by pid at the end, then remove what the clients left on the host
(mounts, cgroup trees of our own names, the few host paths they create).
Every test is parametrized over `runtime` in (runc, pyrunc): the same
assertions must hold for both.  After each test, `nothing_left` checks that
the test's client has no container, runtime state, shim/conmon process,
rootfs mount or container cgroup left.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from integration import hostenv
from integration.daemon import RUNC
from integration.support import pyrunc_path


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: drives pyrunc through a real client "
                            "(containerd, docker, podman); needs root")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="needs root"))


def need(*binaries):
    missing = [b for b in binaries if not shutil.which(b) and not os.access(b, os.X_OK)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (./install.sh --test)")


@pytest.fixture(scope="session")
def runtimes():
    path = pyrunc_path()
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} missing: run ./install.sh")
    need(RUNC)
    return {"runc": RUNC, "pyrunc": path}


@pytest.fixture(params=["runc", "pyrunc"])
def runtime(request):
    return request.param


@pytest.fixture(scope="session")
def session_dir():
    path = tempfile.mkdtemp(prefix="pyrunc-it-", dir="/tmp")
    yield path
    stayed = hostenv.unmount_under(path)
    if stayed:
        pytest.fail(f"mounts left under {path}: {stayed}")
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_rootfs(session_dir):
    from pyrunc.demo import build_busybox_rootfs
    try:
        return build_busybox_rootfs(os.path.join(session_dir, "busybox"))
    except FileNotFoundError as e:
        pytest.skip(str(e))


def _closing(client):
    problems = client.close()
    if problems:
        pytest.fail("left on the host (now removed):\n  " + "\n  ".join(problems))


@pytest.fixture(scope="session")
def containerd(session_dir, runtimes, busybox_rootfs):
    need("containerd", "ctr", "containerd-shim-runc-v2")
    from integration.client_containerd import Containerd
    c = Containerd(session_dir, runtimes)
    try:
        c.import_image(busybox_rootfs, session_dir)
    except BaseException:
        c.close()
        raise
    yield c
    _closing(c)


@pytest.fixture(scope="session")
def dockerd(session_dir, runtimes, busybox_rootfs, containerd):
    from integration.client_docker import DOCKER, DOCKERD, Dockerd
    need(DOCKER, DOCKERD)
    d = Dockerd(session_dir, containerd, runtimes["pyrunc"])
    try:
        d.import_image(busybox_rootfs, session_dir)
    except BaseException:
        d.close()
        raise
    yield d
    _closing(d)


@pytest.fixture(scope="session")
def podman(session_dir, runtimes, busybox_rootfs):
    from integration.client_podman import PODMAN, Podman
    need(PODMAN, "conmon")
    p = Podman(session_dir, runtimes)
    try:
        p.import_image(busybox_rootfs, session_dir)
    except BaseException:
        p.close()
        raise
    yield p
    _closing(p)


@pytest.fixture(autouse=True)
def nothing_left(request):
    """After the test: the module's `client` must hold nothing any more."""
    try:
        client = request.getfixturevalue("client")
    except pytest.FixtureLookupError:     # a module without a client
        yield
        return
    yield
    if hostenv.wait_for(lambda: not client.leftovers(), timeout=10.0):
        return
    left = client.leftovers()
    if left:
        client.reset()
        pytest.fail("test left behind:\n  " + "\n  ".join(left), pytrace=False)

