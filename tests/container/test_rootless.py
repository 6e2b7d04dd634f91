"""Rootless for real: a throwaway unprivileged user runs `pyrunc` (and runc
1.1.5, the oracle) on a bundle from `pyrunc spec --rootless`.

The user (pyrunc-rl-<hex>) is made once per module with ranges in
/etc/subuid and /etc/subgid, and removed afterwards with everything it owns.
Commands run through setpriv with a clean environment, so that the only
difference between cases is XDG_RUNTIME_DIR: set, empty, or unset.
"""
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest

from pyrunc.demo import build_busybox_rootfs
from tests.container import helpers

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNSET = object()

# what the container reports about itself; equal under runc and pyrunc
REPORT = r"""
id
cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups
hostname
grep -E '^(Cap|NoNewPrivs)' /proc/self/status
ls /dev
stat -c '%n %u %g %a' /dev/null / /dev/pts
cat /proc/self/cgroup
awk '{print $5, $9, $6}' /proc/self/mountinfo
ulimit -n
"""


# --------------------------------------------------------------------- the user

@dataclass
class User:
    name: str
    uid: int
    gid: int
    subuid: int          # first subordinate uid (65536 of them)
    subgid: int
    work: str            # a directory the user owns, reachable by it

    def env(self, xdg):
        env = [PATH, "HOME=/", f"USER={self.name}"]
        if xdg is not UNSET:
            env.append(f"XDG_RUNTIME_DIR={xdg}")
        return env

    def argv(self, argv, xdg=UNSET):
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                "--", "env", "-i", *self.env(xdg), *[str(a) for a in argv]]

    def run(self, argv, *, xdg=UNSET, cwd=None, detached=False, timeout=60, prefix=()):
        """Run argv as the user; detached: output through files (a container
        started with -d inherits them and would hold pipes open)."""
        full = list(prefix) + self.argv(argv, xdg)
        kw = dict(cwd=cwd or self.work, stdin=subprocess.DEVNULL, text=True, timeout=timeout)
        if not detached:
            return subprocess.run(full, capture_output=True, **kw)
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            r = subprocess.run(full, stdout=out, stderr=err, **kw)
            out.seek(0)
            err.seek(0)
            r.stdout, r.stderr = out.read(), err.read()
            return r

    def mkdir(self, path, mode=0o755):
        os.makedirs(path, exist_ok=True)
        os.chown(path, self.uid, self.gid)
        os.chmod(path, mode)
        return path


def _sub_start(name, path):
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] == name:
                    return int(parts[1])
    except FileNotFoundError:
        pass
    return None


def _free_sub_range(path):
    """A 65536-id range above everything /etc/sub?id hands out already."""
    top = 400000
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3:
                    top = max(top, int(parts[1]) + int(parts[2]))
    except FileNotFoundError:
        pass
    return (top + 65535) // 65536 * 65536


def _userns_problem(user):
    """Why this host cannot run unprivileged user namespaces, or None."""
    r = subprocess.run(user.argv(["unshare", "--user", "--map-root-user", "id", "-u"]),
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or r.stdout.strip() != "0":
        return (f"unprivileged user namespaces do not work here: unshare -Ur as "
                f"{user.name}: {r.stderr.strip() or r.stdout.strip()} "
                f"(max_user_namespaces={_read('/proc/sys/user/max_user_namespaces')})")
    return None


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


@pytest.fixture(scope="module")
def user():
    for tool in ("useradd", "userdel", "usermod", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    name = "pyrunc-rl-" + secrets.token_hex(4)
    subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", "--user-group", name], check=True,
                   capture_output=True)
    work = None
    try:
        pw = pwd.getpwnam(name)
        if _sub_start(name, "/etc/subuid") is None or _sub_start(name, "/etc/subgid") is None:
            su, sg = _free_sub_range("/etc/subuid"), _free_sub_range("/etc/subgid")
            subprocess.run(["usermod", "--add-subuids", f"{su}-{su + 65535}",
                            "--add-subgids", f"{sg}-{sg + 65535}", name], check=True,
                           capture_output=True)
        work = tempfile.mkdtemp(prefix=f"{name}-")
        u = User(name, pw.pw_uid, pw.pw_gid, _sub_start(name, "/etc/subuid"),
                 _sub_start(name, "/etc/subgid"), work)
        u.mkdir(work)
        problem = _userns_problem(u)
        if problem:
            pytest.skip(problem)
        yield u
    finally:
        uid = pwd.getpwnam(name).pw_uid
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)   # this uid only
        subprocess.run(["userdel", name], capture_output=True)
        _drop_sub_lines(name)
        for leftover in (work, f"/tmp/pyrunc-{uid}", f"/run/user/{uid}"):
            if leftover and os.path.lexists(leftover):
                if os.path.isdir(leftover) and not os.path.islink(leftover):
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    os.unlink(leftover)


def _drop_sub_lines(name):
    # userdel removes them on Debian 12; make sure, without touching other lines
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path) as f:
                lines = f.readlines()
        except FileNotFoundError:
            continue
        kept = [ln for ln in lines if not ln.startswith(name + ":")]
        if kept != lines:
            with open(path, "w") as f:
                f.writelines(kept)


@pytest.fixture(scope="module")
def user_rootfs(user):
    """A busybox rootfs the user owns (every bundle points at it, read-only)."""
    dest = os.path.join(user.work, "rootfs")
    build_busybox_rootfs(dest)
    subprocess.run(["chown", "-R", "-h", f"{user.uid}:{user.gid}", dest], check=True)
    return dest


@pytest.fixture
def xdg_dir(user, pyrunc, leak_check):
    """A private XDG_RUNTIME_DIR for the user.  Afterwards whatever a failed test
    left in it (or in the /tmp fallback) is force-deleted before it goes."""
    path = user.mkdir(tempfile.mkdtemp(prefix="xdg-", dir=user.work), 0o700)
    roots = {os.path.join(path, "pyrunc"): pyrunc, os.path.join(path, "runc"): helpers.RUNC,
             f"/tmp/pyrunc-{user.uid}": pyrunc}
    yield path
    for root, binary in roots.items():
        for cid in os.listdir(root) if os.path.isdir(root) else ():
            subprocess.run([binary, "--root", root, "delete", "--force", cid],
                           capture_output=True, timeout=30)
    shutil.rmtree(path, ignore_errors=True)


def bundle(user, rootfs, args, *, spec_with="pyrunc", edit=None):
    """`<runtime> spec --rootless` run as the user, then terminal off, args, and
    the shared rootfs."""
    path = user.mkdir(tempfile.mkdtemp(prefix="bundle-", dir=user.work))
    binary = helpers.pyrunc_path() if spec_with == "pyrunc" else helpers.RUNC
    r = user.run([binary, "spec", "--rootless"], cwd=path)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = list(args)
    config["root"]["path"] = rootfs
    if edit:
        edit(config)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return path


def runtimes(pyrunc):
    return {"pyrunc": pyrunc, "runc": helpers.RUNC}


def state_dir(name, user, xdg):
    """Where `name` keeps its state for this XDG setting (no /run/user/<uid> here)."""
    if xdg not in (UNSET, ""):
        return os.path.join(xdg, name)
    return f"/tmp/{name}-{user.uid}" if name == "pyrunc" else "/run/runc"


def no_cgroup_named(cid):
    found = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(dirpath, d) for d in dirnames if cid in d]
    return found


# --------------------------------------------------------------------- tests

def test_spec_rootless_is_runcs_for_this_user(user, pyrunc, runc):
    out = {}
    for name, binary in runtimes(pyrunc).items():
        d = user.mkdir(tempfile.mkdtemp(prefix="spec-", dir=user.work))
        r = user.run([binary, "spec", "--rootless"], cwd=d)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(d, "config.json")) as f:
            out[name] = json.load(f)
    assert out["pyrunc"]["linux"]["uidMappings"] == \
        [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert out["pyrunc"]["linux"]["gidMappings"] == \
        [{"containerID": 0, "hostID": user.gid, "size": 1}]
    out["pyrunc"].pop("ociVersion")
    out["runc"].pop("ociVersion")
    assert out["pyrunc"] == out["runc"]


@pytest.mark.parametrize("xdg_mode", ["set", "empty", "unset"])
def test_run_as_user_maps_root_to_the_user(user, user_rootfs, pyrunc, runc, container_id,
                                           xdg_dir, xdg_mode):
    xdg = {"set": xdg_dir, "empty": "", "unset": UNSET}[xdg_mode]
    b = bundle(user, user_rootfs, ["sh", "-c", REPORT])
    out = {}
    for name, binary in runtimes(pyrunc).items():
        r = user.run([binary, "run", "--bundle", b, container_id()], xdg=xdg)
        out[name] = r
    py = out["pyrunc"]
    assert py.returncode == 0, py.stderr
    lines = py.stdout.splitlines()
    assert lines[0] == "uid=0(root) gid=0(root) groups=0(root)"
    assert lines[1].split() == ["0", str(user.uid), "1"]
    assert lines[2].split() == ["0", str(user.gid), "1"]
    assert lines[3] == "deny"
    # state went where the rules say, and nothing is left in it
    root = state_dir("pyrunc", user, xdg)
    st = os.lstat(root)
    assert st.st_uid == user.uid and st.st_mode & 0o7777 in (0o1700, 0o700), oct(st.st_mode)
    assert os.listdir(root) == []
    if xdg_mode == "set":
        assert out["runc"].returncode == 0, out["runc"].stderr
        assert py.stdout == out["runc"].stdout
        assert py.stderr == out["runc"].stderr == ""
    else:
        # runc 1.1.5 falls back to /run/runc, which the user may not use
        assert out["runc"].returncode != 0
        assert "/run/runc" in out["runc"].stderr and "permission denied" in out["runc"].stderr


def test_login_dir_is_the_fallback_when_it_is_ours(user, user_rootfs, pyrunc, container_id):
    login = f"/run/user/{user.uid}"
    assert not os.path.exists(login)
    user.mkdir(login, 0o700)
    try:
        b = bundle(user, user_rootfs, ["true"])
        cid = container_id()
        r = user.run([pyrunc, "run", "-d", "--bundle", b, cid], detached=True)
        assert r.returncode == 0, r.stderr
        assert os.path.isfile(os.path.join(login, "pyrunc", cid, "state.json"))
        assert not os.path.exists(os.path.join(f"/tmp/pyrunc-{user.uid}", cid))
        r = user.run([pyrunc, "delete", "--force", cid])
        assert r.returncode == 0, r.stderr
        assert os.listdir(os.path.join(login, "pyrunc")) == []
    finally:
        for cid in os.listdir(os.path.join(login, "pyrunc")) if os.path.isdir(login) else ():
            subprocess.run([pyrunc, "--root", os.path.join(login, "pyrunc"), "delete",
                            "--force", cid], capture_output=True, timeout=30)
        shutil.rmtree(login, ignore_errors=True)


@pytest.mark.parametrize("name", ["pyrunc", "runc"])
def test_lifecycle_as_user(user, user_rootfs, pyrunc, runc, container_id, xdg_dir, name):
    binary = runtimes(pyrunc)[name]
    b = bundle(user, user_rootfs, ["sleep", "300"])
    cid = container_id()

    def call(*args, **kw):
        return user.run([binary, *args], xdg=xdg_dir, **kw)

    r = call("run", "-d", "--bundle", b, cid, detached=True)
    assert r.returncode == 0, r.stderr
    st = json.loads(call("state", cid).stdout)
    assert st["status"] == "running" and st["id"] == cid
    pid = st["pid"]
    # uid 0 inside is the user outside
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    assert status["Uid"].split() == [str(user.uid)] * 4
    assert status["Gid"].split() == [str(user.gid)] * 4
    r = call("exec", cid, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0", "0", str(user.uid), "1"]
    # no cgroup of its own: it stays in the caller's
    with open(f"/proc/{pid}/cgroup") as f, open("/proc/self/cgroup") as g:
        assert f.read() == g.read()
    assert no_cgroup_named(cid) == []
    listed = json.loads(call("list", "--format", "json").stdout)
    assert [(c["id"], c["status"], c["owner"]) for c in listed] == [(cid, "running", user.name)]
    # runc 1.1.5's `kill --all` needs cgroups: rootless without them it fails
    # ("lstat : no such file or directory"); pyrunc walks the pid namespace
    r = call("kill", *(["--all"] if name == "pyrunc" else []), cid, "KILL")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 10
    while json.loads(call("state", cid).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline, "container did not stop"
        time.sleep(0.05)
    r = call("delete", cid)
    assert r.returncode == 0, r.stderr
    assert call("state", cid).returncode != 0
    assert os.listdir(os.path.join(xdg_dir, name)) == []
    assert no_cgroup_named(cid) == []


def test_terminal_as_user(user, user_rootfs, pyrunc, runc, container_id, xdg_dir):
    """A foreground run on the caller's terminal (a pty from script(1))."""
    if shutil.which("script") is None:
        pytest.skip("script (util-linux) is not installed")
    script = 'tty; id; stat -c "%u %g %a" $(tty); ls -1 /dev/pts'

    def edit(c):
        c["process"]["terminal"] = True
    b = bundle(user, user_rootfs, ["sh", "-c", script], edit=edit)
    out = {}
    for name, binary in runtimes(pyrunc).items():
        r = user.run(["script", "-qec", f"{binary} run --bundle {b} {container_id()}",
                      "/dev/null"], xdg=xdg_dir)
        assert r.returncode == 0, f"{name}: {r.stdout} {r.stderr}"
        out[name] = r.stdout.replace("^@", "")   # the pty echoes a NUL script(1) writes
    assert out["pyrunc"].splitlines() == ["/dev/pts/0", "uid=0(root) gid=0(root) groups=0(root)",
                                          "0 0 620", "0", "ptmx"]
    assert out["pyrunc"] == out["runc"]


def _subordinate(user, uid_base=None, gid_base=None):
    def edit(c):
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": user.uid, "size": 1},
                                     {"containerID": 1, "hostID": uid_base or user.subuid,
                                      "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": user.gid, "size": 1},
                                     {"containerID": 1, "hostID": gid_base or user.subgid,
                                      "size": 65536}]
        for s in c["process"]["capabilities"].values():
            s.append("CAP_CHOWN")
        c["mounts"].append({"destination": "/out", "type": "bind", "source": c["__out"],
                            "options": ["rbind", "rw"]})
        del c["__out"]
    return edit


def test_subordinate_ids_through_newuidmap(user, user_rootfs, pyrunc, runc, container_id,
                                           xdg_dir):
    if not (shutil.which("newuidmap") and shutil.which("newgidmap")):
        pytest.skip("newuidmap/newgidmap are not installed (apt-get install uidmap)")
    results = {}
    for name, binary in runtimes(pyrunc).items():
        out = user.mkdir(os.path.join(user.work, f"out-{name}"))
        edit = _subordinate(user)
        b = bundle(user, user_rootfs, ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map "
                                       "/proc/self/setgroups; touch /out/f; "
                                       "chown 1000:2000 /out/f; stat -c '%u %g' /out/f; id"],
                   edit=lambda c, o=out, e=edit: (c.__setitem__("__out", o), e(c)))
        r = user.run([binary, "run", "--bundle", b, container_id()], xdg=xdg_dir)
        assert r.returncode == 0, f"{name}: {r.stderr}"
        st = os.stat(os.path.join(out, "f"))
        # container uid 1000 is subordinate id subuid + 999 on the host
        assert (st.st_uid, st.st_gid) == (user.subuid + 999, user.subgid + 1999)
        results[name] = r.stdout
        shutil.rmtree(out)
    lines = results["pyrunc"].splitlines()
    assert [ln.split() for ln in lines[:4]] == [
        ["0", str(user.uid), "1"], ["1", str(user.subuid), "65536"],
        ["0", str(user.gid), "1"], ["1", str(user.subgid), "65536"]]
    assert lines[4] == "allow" and lines[5] == "1000 2000"
    # runc leaves the caller's supplementary groups (rootless: no setgroups);
    # pyrunc sets exactly additionalGids (none) since setgroups is allowed here
    assert results["pyrunc"].splitlines()[:6] == results["runc"].splitlines()[:6]
    assert lines[6] == "uid=0(root) gid=0(root)"


def test_ids_outside_subuid_are_refused(user, user_rootfs, pyrunc, runc, container_id,
                                        xdg_dir):
    if not shutil.which("newuidmap"):
        pytest.skip("newuidmap is not installed (apt-get install uidmap)")
    out = user.mkdir(os.path.join(user.work, "out-refused"))
    edit = _subordinate(user, uid_base=user.subuid + 1_000_000)
    b = bundle(user, user_rootfs, ["true"], edit=lambda c: (c.__setitem__("__out", out), edit(c)))
    for name, binary in runtimes(pyrunc).items():
        cid = container_id()
        r = user.run([binary, "run", "--bundle", b, cid], xdg=xdg_dir)
        assert r.returncode != 0, name
        assert user.run([binary, "state", cid], xdg=xdg_dir).returncode != 0
    r = user.run([pyrunc, "run", "--bundle", b, container_id()], xdg=xdg_dir)
    assert "failed to write uid_map: newuidmap" in r.stderr
    assert os.listdir(os.path.join(xdg_dir, "pyrunc")) == []


@pytest.mark.parametrize("case", ["limit", "path"])
def test_cgroups_that_cannot_be_had_fail_like_runc(user, user_rootfs, pyrunc, runc, container_id,
                                                   xdg_dir, case):
    def edit(c):
        if case == "limit":
            c["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
        else:
            c["linux"]["cgroupsPath"] = "pyrunc-rl-" + secrets.token_hex(3)
    b = bundle(user, user_rootfs, ["true"], edit=edit)
    errors = {}
    for name, binary in runtimes(pyrunc).items():
        cid = container_id()
        r = user.run([binary, "run", "--bundle", b, cid], xdg=xdg_dir)
        assert r.returncode != 0, name
        errors[name] = r.stderr
        assert no_cgroup_named(cid) == []
    want = "cannot set memory limit" if case == "limit" else "permission denied"
    assert want in errors["runc"] and want in errors["pyrunc"], errors
    assert os.listdir(os.path.join(xdg_dir, "pyrunc")) == []


def test_a_delegated_cgroup_is_used(user, user_rootfs, pyrunc, runc, container_id,
                                    xdg_dir):
    hierarchy = "/sys/fs/cgroup/pids"
    if not os.path.isfile(os.path.join(hierarchy, "cgroup.procs")):
        pytest.skip("no v1 pids hierarchy on this host")
    deleg = os.path.join(hierarchy, "pyrunc-rl-deleg-" + secrets.token_hex(3))
    os.mkdir(deleg)
    try:
        for f in ("", "cgroup.procs", "tasks"):
            os.chown(os.path.join(deleg, f), user.uid, user.gid)
        # a root shell moves itself into the delegated cgroup, then becomes the user
        enter = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', deleg]
        seen = {}
        for name, binary in runtimes(pyrunc).items():
            b = bundle(user, user_rootfs, ["sleep", "300"],
                       edit=lambda c: c["linux"].__setitem__("resources",
                                                             {"pids": {"limit": 42}}))
            cid = container_id()
            r = user.run([binary, "run", "-d", "--bundle", b, cid], xdg=xdg_dir,
                         detached=True, prefix=enter)
            assert r.returncode == 0, f"{name}: {r.stderr}"
            pid = json.loads(user.run([binary, "state", cid], xdg=xdg_dir).stdout)["pid"]
            with open(f"/proc/{pid}/cgroup") as f:
                lines = dict(ln.split(":", 2)[1:] for ln in f.read().splitlines())
            rel = deleg[len(hierarchy):] + "/" + cid
            seen[name] = lines["pids"].strip() == rel
            with open(os.path.join(hierarchy + rel, "pids.max")) as f:
                assert f.read().strip() == "42", name
            r = user.run([binary, "delete", "--force", cid], xdg=xdg_dir)
            assert r.returncode == 0, f"{name}: {r.stderr}"
            assert not os.path.exists(hierarchy + rel), name
        assert seen == {"pyrunc": True, "runc": True}
    finally:
        deadline = time.monotonic() + 5
        while True:
            try:
                for sub in os.listdir(deleg):
                    if os.path.isdir(os.path.join(deleg, sub)):
                        os.rmdir(os.path.join(deleg, sub))
                os.rmdir(deleg)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.mark.parametrize("plant", ["root-owned", "symlink", "world-writable"])
def test_planted_tmp_state_dir_is_refused(user, pyrunc, plant):
    path = f"/tmp/pyrunc-{user.uid}"
    shutil.rmtree(path, ignore_errors=True)
    decoy = tempfile.mkdtemp(prefix="decoy-")
    try:
        if plant == "root-owned":
            os.mkdir(path, 0o755)
        elif plant == "symlink":
            os.chown(decoy, user.uid, user.gid)
            os.chmod(decoy, 0o700)
            os.symlink(decoy, path)
        else:
            os.mkdir(path)
            os.chown(path, user.uid, user.gid)
            os.chmod(path, 0o777)
        r = user.run([pyrunc, "list"])
        assert r.returncode == 1
        assert "refusing to use it" in r.stderr and path in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    finally:
        if os.path.islink(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(decoy, ignore_errors=True)
