"""pyrunc.rootless: who is rootless, the state root rules, id-map helpers, and
the cgroup usability check.  No root needed; no real user namespace."""
import os
import posix
import stat

import pytest

from pyrunc import rootless
from pyrunc.errors import RuntimeFailure
from pyrunc.spec.config import IdMapping

ME = os.geteuid()


# --- in a user namespace? ----------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("         0          0 4294967295\n", False),
    ("         0       1000          1\n", True),
    ("0 0 4294967295\n1 1 1\n", True),
    ("", True),                 # a namespace whose map is not written yet
])
def test_in_user_namespace(tmp_path, text, expected):
    p = tmp_path / "uid_map"
    p.write_text(text)
    assert rootless.in_user_namespace(str(p)) is expected


def test_no_uid_map_file_means_initial_namespace(tmp_path):
    assert rootless.in_user_namespace(str(tmp_path / "missing")) is False


def test_this_process():
    with open("/proc/self/uid_map") as f:
        full = f.read().split() == ["0", "0", "4294967295"]
    assert rootless.in_user_namespace() is (not full)
    assert rootless.is_rootless() is (os.geteuid() != 0 or not full)


# --- the state root ------------------------------------------------------------------

def root_path(env, euid, userns=False, run_user="/nonexistent-run-user"):
    return rootless.state_root_path(env, euid, userns, run_user)


def test_real_root_ignores_xdg():
    assert root_path({"XDG_RUNTIME_DIR": "/run/user/0"}, 0) == ("/run/pyrunc", False)
    assert root_path({}, 0) == ("/run/pyrunc", False)


def test_user_with_xdg():
    assert root_path({"XDG_RUNTIME_DIR": "/run/user/1000"}, 1000) == \
        ("/run/user/1000/pyrunc", True)


@pytest.mark.parametrize("env", [{}, {"XDG_RUNTIME_DIR": ""}, {"XDG_RUNTIME_DIR": "rel/dir"}])
def test_user_without_usable_xdg_falls_back_to_tmp(env):
    assert root_path(env, 1000) == ("/tmp/pyrunc-1000", True)


def test_user_without_xdg_prefers_own_login_dir(tmp_path):
    uid = ME or 12345            # as root, pretend to be a user: chown the dir to them
    login = tmp_path / str(uid)
    login.mkdir(mode=0o700)
    os.chmod(login, 0o700)
    if ME == 0:
        os.chown(login, uid, -1)
    assert root_path({}, uid, run_user=str(tmp_path)) == (f"{login}/pyrunc", True)
    os.chmod(login, 0o755)     # not private: not a login dir we trust
    assert root_path({}, uid, run_user=str(tmp_path)) == (f"/tmp/pyrunc-{uid}", True)
    os.chmod(login, 0o700)
    # someone else's
    other = tmp_path / str(uid + 1)
    login.rename(other)
    assert root_path({}, uid + 1, run_user=str(tmp_path)) == (f"/tmp/pyrunc-{uid + 1}", True)


def test_root_of_a_user_namespace():
    xdg = {"XDG_RUNTIME_DIR": "/run/user/1000"}
    assert root_path(dict(xdg, USER="alice"), 0, userns=True) == ("/run/user/1000/pyrunc", True)
    assert root_path(dict(xdg), 0, userns=True) == ("/run/user/1000/pyrunc", True)
    assert root_path(dict(xdg, USER="root"), 0, userns=True) == ("/run/pyrunc", False)
    assert root_path({}, 0, userns=True) == ("/run/pyrunc", False)


def test_ensure_private_dir_creates_0700_sticky(tmp_path):
    d = tmp_path / "pyrunc-x"
    rootless.ensure_private_dir(str(d), ME)
    st = os.lstat(d)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o1700
    rootless.ensure_private_dir(str(d), ME)   # again: fine


def test_ensure_private_dir_makes_missing_parents(tmp_path):
    d = tmp_path / "xdg" / "pyrunc"
    rootless.ensure_private_dir(str(d), ME)
    assert d.is_dir()


def test_ensure_private_dir_refuses_someone_elses(tmp_path):
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    with pytest.raises(RuntimeFailure, match=f"belongs to uid {ME}, not {ME + 1}"):
        rootless.ensure_private_dir(str(d), ME + 1)


def test_ensure_private_dir_refuses_a_symlink(tmp_path):
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(RuntimeFailure, match="not a directory"):
        rootless.ensure_private_dir(str(link), ME)


def test_ensure_private_dir_refuses_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(RuntimeFailure, match="not a directory"):
        rootless.ensure_private_dir(str(f), ME)


def test_ensure_private_dir_refuses_group_writable(tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o770)
    with pytest.raises(RuntimeFailure, match="writable by other users"):
        rootless.ensure_private_dir(str(d), ME)


def test_state_root_makes_and_vets_a_users_root(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    monkeypatch.setattr(posix, "geteuid", lambda: ME or 12345)
    if ME == 0:
        os.makedirs(xdg)
        os.chown(xdg, 12345, -1)
        with pytest.raises(RuntimeFailure, match="belongs to uid 0, not 12345"):
            rootless.state_root({"XDG_RUNTIME_DIR": str(xdg)})   # made by root: not theirs
        return
    path = rootless.state_root({"XDG_RUNTIME_DIR": str(xdg)})
    assert path == f"{xdg}/pyrunc" and os.path.isdir(path)


def test_default_root_for_real_root_ignores_xdg(monkeypatch, tmp_path):
    from pyrunc.state import default_root
    monkeypatch.setattr(posix, "geteuid", lambda: 0)
    monkeypatch.setattr(rootless, "in_user_namespace", lambda *a: False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_root() == "/run/pyrunc"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_root() == "/run/pyrunc"
    assert os.listdir(tmp_path) == []


def test_default_root_for_a_user_follows_xdg(monkeypatch, tmp_path):
    from pyrunc.state import default_root
    monkeypatch.setattr(posix, "geteuid", lambda: ME or 12345)
    monkeypatch.setattr(rootless, "ensure_private_dir", lambda path, euid: None)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_root() == f"{tmp_path}/pyrunc"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "")
    fallback = default_root()
    assert fallback == rootless.state_root_path({}, ME or 12345)[0]
    assert not fallback.startswith(str(tmp_path))


# --- id maps -------------------------------------------------------------------------

def m(c, h, s):
    return IdMapping(c, h, s)


def test_maps_only_own_id():
    assert rootless.maps_only_own_id((m(0, 1000, 1),), 1000)
    assert not rootless.maps_only_own_id((m(0, 1000, 2),), 1000)
    assert not rootless.maps_only_own_id((m(0, 1001, 1),), 1000)
    assert not rootless.maps_only_own_id((m(0, 1000, 1), m(1, 100000, 65536)), 1000)
    assert not rootless.maps_only_own_id((), 1000)


def test_helper_argv():
    assert rootless.helper_argv("/usr/bin/newuidmap", 42, (m(0, 1000, 1), m(1, 100000, 65536))) \
        == ["/usr/bin/newuidmap", "42", "0", "1000", "1", "1", "100000", "65536"]


def _fake_helper(tmp_path, name, body):
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    p = bindir / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return bindir


def test_find_helper_searches_path_first(tmp_path):
    bindir = _fake_helper(tmp_path, "newuidmap-test", "exit 0\n")
    assert rootless.find_helper("newuidmap-test", f"relative:{bindir}") == \
        f"{bindir}/newuidmap-test"
    assert rootless.find_helper("no-such-helper-xyz", str(bindir)) is None


def test_run_helper_passes_triples(tmp_path, monkeypatch):
    out = tmp_path / "argv"
    bindir = _fake_helper(tmp_path, "newuidmap", f'echo "$@" > {out}\n')
    monkeypatch.setenv("PATH", str(bindir))
    rootless.run_helper("newuidmap", 77, (m(0, 1000, 1), m(1, 100000, 65536)), "uid_map")
    assert out.read_text().split() == ["77", "0", "1000", "1", "1", "100000", "65536"]


def test_run_helper_failure_names_the_helper_and_its_reason(tmp_path, monkeypatch):
    bindir = _fake_helper(tmp_path, "newgidmap",
                          'echo "newgidmap: gid range [1-65537) -> [100000-165536) not allowed"'
                          ' >&2\nexit 1\n')
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(RuntimeFailure, match=r"failed to write gid_map: newgidmap: gid range "
                                             r"\[1-65537\).* not allowed$"):
        rootless.run_helper("newgidmap", 77, (m(1, 100000, 65536),), "gid_map")


def test_run_helper_missing_says_what_to_install(monkeypatch):
    monkeypatch.setattr(rootless, "find_helper", lambda name, path=None: None)
    with pytest.raises(RuntimeFailure, match="failed to write uid_map: .*newuidmap.*uidmap "
                                             "package"):
        rootless.run_helper("newuidmap", 1, (m(0, 1, 2),), "uid_map")


def test_deny_setgroups_writes_deny(tmp_path, monkeypatch):
    written = {}

    class F:
        def __init__(self, path, mode):
            written["path"] = path

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def write(self, s):
            written["data"] = s

    monkeypatch.setattr(rootless, "open", F, raising=False)
    rootless.deny_setgroups(1234)
    assert written == {"path": "/proc/1234/setgroups", "data": "deny"}


def test_deny_setgroups_failure_is_a_runtime_failure(monkeypatch):
    def refuse(path, mode):
        raise PermissionError(1, "Operation not permitted", path)
    monkeypatch.setattr(rootless, "open", refuse, raising=False)
    with pytest.raises(RuntimeFailure, match="^failed to write /proc/9/setgroups: operation "
                                             "not permitted$"):
        rootless.deny_setgroups(9)


# --- cgroups -----------------------------------------------------------------------

def test_cgroup_usable_checks_the_nearest_existing_level(tmp_path, monkeypatch):
    checked = []
    monkeypatch.setattr(rootless, "_writable", lambda p: checked.append(p) or True)
    base = tmp_path / "cg"
    (base / "deleg").mkdir(parents=True)
    assert rootless.cgroup_usable(str(base / "deleg" / "a" / "c1"), str(base))
    assert checked == [str(base / "deleg")]
    checked.clear()
    (base / "deleg" / "a" / "c1").mkdir(parents=True)
    assert rootless.cgroup_usable(str(base / "deleg" / "a" / "c1"), str(base))
    assert checked == [str(base / "deleg" / "a" / "c1" / "cgroup.procs")]


def test_cgroup_usable_false_when_nothing_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(rootless, "_writable", lambda p: True)
    assert not rootless.cgroup_usable(str(tmp_path / "no" / "base" / "c1"),
                                      str(tmp_path / "no" / "base"))


def test_cgroup_usable_real_permissions(tmp_path):
    base = tmp_path / "cg"
    base.mkdir()
    assert rootless.cgroup_usable(str(base / "c1"), str(base))
    if ME != 0:   # root may write anywhere; the container tests cover the real refusal
        base.chmod(0o555)
        assert not rootless.cgroup_usable(str(base / "c1"), str(base))
