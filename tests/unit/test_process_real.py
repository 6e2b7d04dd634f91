"""The process handlers on the real kernel, where no root is needed: cwd,
executable lookup (Go 1.19 exec.LookPath in runc 1.1.5's words), fds, loopback."""
import fcntl
import os
import shutil
import subprocess
import sys as _pysys

import pytest

from pyrunc import syscalls
from pyrunc.errors import RuntimeFailure
from pyrunc.executor import base
from pyrunc.executor import process  # noqa: F401 - registers the handlers
from pyrunc.plan.steps import Chdir, CloseFds, MakeCwd, ResolveExecutable


def ctx_for(sys, **kw):
    return base.Context(sys=sys, config=None, **kw)


def run(steps, ctx):
    for step in steps:
        base._HANDLERS[type(step)](step, ctx)


# --- cwd ------------------------------------------------------------------------

@pytest.fixture
def keep_cwd():
    here = os.getcwd()
    yield
    os.chdir(here)


def test_chdir_real(tmp_path, keep_cwd):
    (tmp_path / "d").mkdir()
    run([Chdir(str(tmp_path / "d"))], ctx_for(syscalls))
    assert os.getcwd() == str(tmp_path / "d")


def test_chdir_through_a_leaked_fd_is_refused_real(tmp_path, keep_cwd):
    # CVE-2024-21626: cwd=/proc/self/fd/N with N a directory fd we hold
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(RuntimeFailure, match="chdir to cwd"):
            run([Chdir(f"/proc/self/fd/{fd}")], ctx_for(syscalls))
    finally:
        os.close(fd)
    assert os.getcwd() != str(tmp_path)


def test_make_cwd_real(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    run([MakeCwd(str(target))], ctx_for(syscalls))          # already inside the root
    assert target.is_dir()
    run([MakeCwd(str(target))], ctx_for(syscalls))          # exists: fine
    (tmp_path / "f").write_text("")
    with pytest.raises(RuntimeFailure, match="not a directory"):
        run([MakeCwd(str(tmp_path / "f" / "x"))], ctx_for(syscalls))


def test_make_cwd_in_a_rootfs_before_pivot_real(tmp_path):
    rootfs, host = tmp_path / "rootfs", tmp_path / "host"
    rootfs.mkdir()
    host.mkdir()
    os.symlink(str(host), rootfs / "escape")                # absolute: resolves in-root
    fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
    try:
        run([MakeCwd("/escape/w")], ctx_for(syscalls, root_fd=fd))
    finally:
        os.close(fd)
    assert list(host.iterdir()) == []
    assert (rootfs / str(host).lstrip("/") / "w").is_dir()


# --- executable lookup ------------------------------------------------------------

@pytest.fixture
def bins(tmp_path):
    b = tmp_path / "bin"
    b.mkdir()
    (b / "tool").write_text("#!/bin/sh\n")
    (b / "tool").chmod(0o755)
    (b / "data").write_text("")
    (b / "data").chmod(0o644)
    (b / "dir").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "data").write_text("")
    (other / "data").chmod(0o755)
    return tmp_path


def lookup(arg0, path_env):
    ctx = ctx_for(syscalls)
    run([ResolveExecutable(arg0, path_env)], ctx)
    return ctx.exec_path


def test_lookup_on_path(bins):
    assert lookup("tool", f"/nonexistent:{bins}/bin") == f"{bins}/bin/tool"
    # a non-executable match is skipped, the next directory wins
    assert lookup("data", f"{bins}/bin:{bins}/other") == f"{bins}/other/data"


@pytest.mark.parametrize("arg0, path_env, words", [
    ("nothere", "{b}/bin", 'exec: "nothere": executable file not found in $PATH'),
    ("tool", "", 'exec: "tool": executable file not found in $PATH'),
    ("data", "{b}/bin", 'exec: "data": executable file not found in $PATH'),
    ("", "{b}/bin", 'exec: "": executable file not found in $PATH'),
    ("{b}/x", "", 'exec: "{b}/x": stat {b}/x: no such file or directory'),
    ("{b}/bin/data", "", 'exec: "{b}/bin/data": permission denied'),
    ("{b}/bin/dir", "", 'exec: "{b}/bin/dir": permission denied'),
    ("{b}/bin/tool/x", "", 'exec: "{b}/bin/tool/x": stat {b}/bin/tool/x: not a directory'),
])
def test_lookup_errors(bins, arg0, path_env, words):
    with pytest.raises(RuntimeFailure) as info:
        lookup(arg0.format(b=bins), path_env.format(b=bins))
    assert str(info.value) == words.format(b=bins)


def test_lookup_direct_and_relative(bins, keep_cwd):
    assert lookup(f"{bins}/bin/tool", "") == f"{bins}/bin/tool"
    os.chdir(bins / "bin")
    assert lookup("./tool", "") == "./tool"          # a slash: used as given
    # Go 1.19 refuses what it found through a relative PATH entry
    for path_env in (":", ".", f".:{bins}/bin"):
        with pytest.raises(RuntimeFailure, match="cannot run executable found relative"):
            lookup("tool", path_env)


def test_lookup_permission_on_a_path_component(bins):
    if _has_dac_override():
        pytest.skip("root with CAP_DAC_OVERRIDE reads anything")
    locked = bins / "locked"
    locked.mkdir()
    (locked / "t").write_text("")
    locked.chmod(0)
    try:
        with pytest.raises(RuntimeFailure, match="stat .*: permission denied"):
            lookup(f"{locked}/t", "")
    finally:
        locked.chmod(0o755)


def _has_dac_override():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & 1 << 1)
    return False


# --- real fds and loopback (in child processes) -------------------------------

def test_close_fds_real():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            keep = os.open("/dev/null", os.O_RDONLY)        # non-inheritable, like Python's
            os.dup2(keep, 3, inheritable=False)
            stray = os.open("/dev/null", os.O_RDONLY)
            os.set_inheritable(stray, True)
            run([CloseFds(4)], ctx_for(syscalls))
            ok = (fcntl.fcntl(3, fcntl.F_GETFD) & fcntl.FD_CLOEXEC == 0
                  and fcntl.fcntl(stray, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
                  and fcntl.fcntl(0, fcntl.F_GETFD) & fcntl.FD_CLOEXEC == 0)
            code = 0 if ok else 2
        finally:
            os._exit(code)
    os.close(r)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_bring_up_loopback_real():
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1)")
    code = ("from pyrunc import syscalls; syscalls.link_up('lo'); import fcntl, socket, struct;"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
            "r = fcntl.ioctl(s, 0x8913, struct.pack('16sh14x', b'lo', 0));"
            "print(struct.unpack('16sh14x', r)[1] & 1)")
    res = subprocess.run(["unshare", "-rn", _pysys.executable, "-c", code],
                         capture_output=True, text=True, cwd=os.path.dirname(
                             os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if res.returncode and "unshare" in res.stderr:
        pytest.skip(f"cannot make a network namespace here: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"
