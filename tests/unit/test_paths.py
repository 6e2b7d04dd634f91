"""In-root path resolution on a real filesystem: nothing may escape the root.

These use the real pyrunc.syscalls on plain tmp directories (no root needed).
Every "host" directory sits next to the root, so an escape would show up as a
file or directory created or opened there.
"""
import errno
import os
import stat

import pytest

from pyrunc import syscalls
from pyrunc.executor import paths


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    host = tmp_path / "host"
    root.mkdir()
    host.mkdir()
    (host / "secret").write_text("host")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    yield root, host, fd
    os.close(fd)


def where(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def host_untouched(host):
    assert sorted(os.listdir(host)) == ["secret"]


def test_mkdir_all_creates_each_component(tree):
    root, host, rfd = tree
    fd = paths.mkdir_all_in_root(syscalls, rfd, "/a/b/c", 0o750)
    assert where(fd) == str(root / "a/b/c")
    assert (root / "a/b/c").is_dir()
    assert oct((root / "a/b").stat().st_mode & 0o777) == oct(0o750 & ~os.umask(os.umask(0)))


def test_mkdir_all_existing_path_is_opened_not_recreated(tree):
    root, _, rfd = tree
    (root / "x").mkdir()
    (root / "x/keep").write_text("1")
    fd = paths.mkdir_all_in_root(syscalls, rfd, "x", 0o755)
    assert where(fd) == str(root / "x")
    assert (root / "x/keep").read_text() == "1"


@pytest.mark.parametrize("link", ["../host", "../../../../host", None])
def test_symlink_pointing_outside_is_followed_inside(tree, link):
    root, host, rfd = tree
    # None: an absolute symlink to the host directory's own path
    os.symlink(link or str(host), root / "evil")
    fd = paths.mkdir_all_in_root(syscalls, rfd, "/evil/sub", 0o755)
    got = where(fd)
    assert got.startswith(str(root) + "/"), got
    host_untouched(host)


def test_absolute_symlink_restarts_at_the_root(tree):
    root, host, rfd = tree
    (root / "etc").mkdir()
    os.symlink("/etc", root / "link")
    fd = paths.mkdir_all_in_root(syscalls, rfd, "/link/new", 0o755)
    assert where(fd) == str(root / "etc/new")


def test_dotdot_never_climbs_above_the_root(tree):
    root, host, rfd = tree
    fd = paths.mkdir_all_in_root(syscalls, rfd, "/../../host/made", 0o755)
    assert where(fd) == str(root / "host/made")
    host_untouched(host)


def test_dotdot_after_symlink_is_resolved_physically_like_securejoin(tree):
    root, _, rfd = tree
    (root / "x/y").mkdir(parents=True)
    os.symlink("/x/y", root / "l")
    fd = paths.mkdir_all_in_root(syscalls, rfd, "/l/../z", 0o755)
    assert where(fd) == str(root / "x/z")


def test_symlink_chain_and_dangling_target_inside(tree):
    root, host, rfd = tree
    os.symlink("b", root / "a")
    os.symlink("/../../host/newdir", root / "b")
    fd = paths.mkdir_all_in_root(syscalls, rfd, "/a/c", 0o755)
    assert where(fd) == str(root / "host/newdir/c")
    host_untouched(host)


def test_symlink_loop_is_eloop(tree):
    root, _, rfd = tree
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    with pytest.raises(OSError) as e:
        paths.mkdir_all_in_root(syscalls, rfd, "/loop1/x", 0o755)
    assert e.value.errno == errno.ELOOP


def test_file_in_the_middle_is_enotdir(tree):
    root, _, rfd = tree
    (root / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        paths.mkdir_all_in_root(syscalls, rfd, "/f/x", 0o755)


def test_create_file_through_dangling_symlink_lands_inside(tree):
    root, host, rfd = tree
    (root / "etc").mkdir()
    # the classic /etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf
    os.symlink("../../../host/resolv", root / "etc/resolv.conf")
    fd = paths.create_file_in_root(syscalls, rfd, "/etc/resolv.conf")
    assert where(fd) == str(root / "host/resolv")
    assert (root / "host/resolv").is_file()
    host_untouched(host)


def test_create_file_keeps_existing_file_and_makes_parents(tree):
    root, _, rfd = tree
    fd = paths.create_file_in_root(syscalls, rfd, "/etc/hosts")
    assert where(fd) == str(root / "etc/hosts")
    (root / "etc/hosts").write_text("keep")
    fd = paths.create_file_in_root(syscalls, rfd, "/etc/hosts")
    os.close(fd)
    assert (root / "etc/hosts").read_text() == "keep"


def test_open_in_root_resolves_absolute_symlink_inside(tree):
    root, host, rfd = tree
    mirror = root / str(host).lstrip("/")
    mirror.mkdir(parents=True)
    (mirror / "secret").write_text("container")
    os.symlink(str(host / "secret"), root / "s")   # host path, read as a root path
    fd = paths.open_in_root(syscalls, rfd, "/s", os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"container"
    finally:
        os.close(fd)


def test_open_in_root_missing_outside_target_is_enoent(tree):
    root, host, rfd = tree
    os.symlink("../host/secret", root / "s")
    with pytest.raises(FileNotFoundError):
        paths.open_in_root(syscalls, rfd, "/s")


def test_open_no_symlinks_refuses_any_symlink(tree):
    root, _, rfd = tree
    (root / "proc/sys").mkdir(parents=True)
    os.symlink("/proc", root / "link")
    os.symlink("/proc/sys", root / "proc/last")
    os.close(paths.open_no_symlinks(syscalls, rfd, "/proc/sys"))
    with pytest.raises(OSError) as e:
        paths.open_no_symlinks(syscalls, rfd, "/link/sys")
    assert e.value.errno == errno.ELOOP
    # a final symlink comes back as the link itself, for the caller to refuse
    fd = paths.open_no_symlinks(syscalls, rfd, "/proc/last")
    try:
        assert stat.S_ISLNK(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def test_resolve_parent_refuses_dotdot_name(tree):
    _, _, rfd = tree
    with pytest.raises(OSError):
        paths.resolve_parent_in_root(syscalls, rfd, "/dev/..")
    pfd, name = paths.resolve_parent_in_root(syscalls, rfd, "/dev/net/tun")
    try:
        assert name == "tun" and where(os.dup(pfd)).endswith("/root/dev/net")
    finally:
        os.close(pfd)


def test_root_itself(tree):
    root, _, rfd = tree
    assert where(paths.mkdir_all_in_root(syscalls, rfd, "/", 0o755)) == str(root)
    assert where(paths.mkdir_all_in_root(syscalls, rfd, "/..", 0o755)) == str(root)


def test_check_inside(tree):
    root, host, rfd = tree
    loc = paths.fd_location(syscalls, rfd)
    inside = paths.mkdir_all_in_root(syscalls, rfd, "/a", 0o755)
    outside = os.open(host, os.O_PATH)
    try:
        paths.check_inside(syscalls, inside, loc)
        with pytest.raises(OSError):
            paths.check_inside(syscalls, outside, loc)
    finally:
        os.close(inside)
        os.close(outside)


def test_sibling_with_common_prefix_is_outside(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "rootx").mkdir()
    rfd = os.open(tmp_path / "root", os.O_PATH)
    other = os.open(tmp_path / "rootx", os.O_PATH)
    try:
        with pytest.raises(OSError):
            paths.check_inside(syscalls, other, paths.fd_location(syscalls, rfd))
    finally:
        os.close(rfd)
        os.close(other)
