"""The process handlers, with the recording double: call order and errors.
(The parts that need no root run on the real kernel in test_process_real.py.)"""
import errno
import os
import resource
from types import SimpleNamespace

import pytest

from pyrunc import caps, syscalls
from pyrunc.errors import RuntimeFailure
from pyrunc.executor import base
from pyrunc.executor import identity
from pyrunc.executor import process as proc
from pyrunc.plan.steps import (
    BringUpLoopback, Chdir, CloseFds, DropBoundingSet, Exec, SetCapabilities, SetHostname,
    SetNoNewPrivs, SetOomScoreAdj, SetRlimit, SetUser, WriteSysctl,
)
from tests.doubles import RecordingSys

C = syscalls.C


class FakeSys(RecordingSys):
    """RecordingSys whose calls can answer: returns[name] is a value, a list
    (one answer per call) or a callable (its result, or what it raises)."""

    def __init__(self, **returns):
        super().__init__()
        self.returns = returns

    def __getattr__(self, name):
        record = super().__getattr__(name)
        if name not in self.returns:
            return record

        def call(*args, **kwargs):
            fd = record(*args, **kwargs)
            answer = self.returns[name]
            if callable(answer):
                return answer(*args)
            if isinstance(answer, list):
                return answer.pop(0)
            return answer if answer is not None else fd
        return call


def raising(err):
    def fn(*args):
        raise OSError(err, os.strerror(err))
    return fn


def stat_of(uid=0, gid=0, rdev=0, mode=0o10600):
    return SimpleNamespace(st_uid=uid, st_gid=gid, st_rdev=rdev, st_mode=mode)


def identity_sys(**extra):
    null = stat_of(rdev=os.makedev(1, 3), mode=0o20666)
    answers = dict(stat=null, fstat=stat_of(uid=0), read_file=b"", get_pdeathsig=0)
    answers.update(extra)
    return FakeSys(**answers)


def ctx_for(sys, **kw):
    return base.Context(sys=sys, config=None, **kw)


def run(steps, ctx):
    for step in steps:
        base._HANDLERS[type(step)](step, ctx)


@pytest.fixture(autouse=True)
def all_caps_known(monkeypatch):
    monkeypatch.setattr(caps, "_last_cap", 40)


def index(calls, pred):
    for i, c in enumerate(calls):
        if pred(c):
            return i
    raise AssertionError("no such call")


def prctl_calls(sys, option):
    return [c for c in sys.of("prctl") if c[1][0] == option]


# --- the identity switch -------------------------------------------------------

IDENTITY = [
    DropBoundingSet(("CAP_CHOWN", "CAP_SETUID", "CAP_KILL")),
    SetUser(1000, 1000, (10, 20), None),
    SetCapabilities(("CAP_KILL",), ("CAP_KILL", "CAP_CHOWN"), (), ("CAP_KILL",)),
]


def test_identity_switch_order():
    sys = identity_sys()
    run(IDENTITY, ctx_for(sys))
    calls = sys.calls
    is_ = lambda name: lambda c: c[0] == name  # noqa: E731
    keepcaps = [i for i, c in enumerate(calls)
                if c[0] == "prctl" and c[1][0] == C.PR_SET_KEEPCAPS]
    last_drop = max(i for i, c in enumerate(calls) if c[0] == "capbset_drop")
    setgroups, setgid, setuid = (index(calls, is_(n)) for n in
                                 ("setgroups", "setresgid", "setresuid"))
    capset = index(calls, is_("capset"))
    clear = index(calls, lambda c: c[0] == "prctl" and c[1][:2] == (
        C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_CLEAR_ALL))
    raise_ = index(calls, lambda c: c[0] == "prctl" and c[1][:2] == (
        C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_RAISE))
    assert last_drop < keepcaps[0]                           # bounding set before ids
    assert calls[keepcaps[0]][1][1] == 1 and calls[keepcaps[1]][1][1] == 0
    assert keepcaps[0] < setgroups < setgid < setuid < keepcaps[1]   # keepcaps around setuid
    assert setuid < capset < clear < raise_                  # caps after the switch
    assert raise_ == max(i for i, c in enumerate(calls) if c[0] in ("prctl", "capset"))
    assert sys.of("umask") == [("umask", (0o022,))]          # runc's default
    assert sys.of("setresuid") == [("setresuid", (1000, 1000, 1000))]
    assert sys.of("setresgid") == [("setresgid", (1000, 1000, 1000))]
    assert sys.of("setgroups") == [("setgroups", ([10, 20],))]


def test_capset_exact_and_nothing_inheritable_unless_configured():
    sys = identity_sys()
    run(IDENTITY, ctx_for(sys))
    assert sys.of("capset") == [("capset", (1 << 5, 1 << 5 | 1 << 0, 0))]
    sys = identity_sys()
    run([SetCapabilities(("CAP_KILL",), ("CAP_KILL",), ("CAP_KILL",), ())], ctx_for(sys))
    assert sys.of("capset") == [("capset", (1 << 5, 1 << 5, 1 << 5))]
    # ambient: cleared, nothing raised
    assert [c[1][:2] for c in sys.of("prctl")] == [(C.PR_CAP_AMBIENT,
                                                    C.PR_CAP_AMBIENT_CLEAR_ALL)]


def test_bounding_set_drops_exactly_the_others():
    sys = identity_sys()
    run([DropBoundingSet(("CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"))], ctx_for(sys))
    dropped = [c[1][0] for c in sys.of("capbset_drop")]
    assert dropped == list(range(1, 40))


def test_bounding_set_without_setpcap_is_left_alone():
    sys = identity_sys(capbset_drop=raising(errno.EPERM))
    run([DropBoundingSet(())], ctx_for(sys))   # runc skips it too: no error
    assert len(sys.of("capbset_drop")) == 1


def test_bounding_set_skips_caps_the_kernel_lacks():
    answers = [None, OSError(errno.EINVAL, "x")] + [None] * 40

    def drop(cap):
        a = answers.pop(0)
        if a:
            raise a
    sys = identity_sys(capbset_drop=drop)
    run([DropBoundingSet(())], ctx_for(sys))
    assert len(sys.of("capbset_drop")) == 41


def test_unknown_caps_warn_once_and_are_left_out():
    sys = identity_sys()
    ctx = ctx_for(sys)
    run([DropBoundingSet(("CAP_KILL", "CAP_NEW_THING")),
         SetCapabilities(("CAP_KILL", "CAP_NEW_THING"), ("CAP_KILL", "CAP_NEW_THING"), (), ())],
        ctx)
    assert ctx.extra["warnings"] == [
        ["warning", "ignoring unknown or unavailable capabilities: [CAP_NEW_THING]"]]
    assert sys.of("capset") == [("capset", (1 << 5, 1 << 5, 0))]


def test_ambient_that_the_kernel_refuses_is_a_warning_like_runc():
    def prctl(option, *args):
        if args and args[0] == C.PR_CAP_AMBIENT_RAISE:
            raise OSError(errno.EPERM, "Operation not permitted")
    sys = identity_sys(prctl=prctl)
    ctx = ctx_for(sys)
    run([SetCapabilities(("CAP_KILL",), ("CAP_KILL",), (), ("CAP_KILL",))], ctx)
    # runc says nothing at all; ours is a debug line only
    assert ctx.extra["warnings"] == [
        ["debug", "ambient capabilities not raised (each must be permitted and inheritable): "
                  "[CAP_KILL]"]]


def test_capset_failure_is_reported():
    sys = identity_sys(capset=raising(errno.EPERM))
    with pytest.raises(RuntimeFailure, match="unable to apply caps: operation not permitted"):
        run([SetCapabilities(("CAP_KILL",), (), (), ())], ctx_for(sys))


def test_setgroups_skipped_where_the_user_namespace_denies_it():
    sys = identity_sys(read_file=lambda path: b"deny\n" if "setgroups" in path else b"")
    run([SetUser(0, 0, (), None)], ctx_for(sys, userns=True))
    assert sys.of("setgroups") == []
    sys = identity_sys(read_file=lambda path: b"allow\n" if "setgroups" in path else b"")
    run([SetUser(0, 0, (), None)], ctx_for(sys, userns=True))
    assert sys.of("setgroups") == [("setgroups", ([],))]   # clears root's groups, as runc


def test_setuid_failure_names_the_call():
    sys = identity_sys(setresuid=raising(errno.EINVAL))
    with pytest.raises(RuntimeFailure, match="unable to setup user: setresuid: invalid argument"):
        run([SetUser(70000, 0, (), 0o027)], ctx_for(sys))


def test_umask_and_pdeathsig_restored():
    sys = identity_sys(get_pdeathsig=9)
    run([SetUser(1, 1, (), 0o027)], ctx_for(sys))
    assert sys.of("umask") == [("umask", (0o027,))]
    pdeath = prctl_calls(sys, C.PR_SET_PDEATHSIG)
    assert pdeath == [("prctl", (C.PR_SET_PDEATHSIG, 9))]
    assert sys.calls.index(pdeath[0]) > index(sys.calls, lambda c: c[0] == "setresuid")


def test_stdio_given_to_the_user_except_dev_null():
    null = os.makedev(1, 3)
    fstats = [stat_of(uid=0, gid=5), stat_of(uid=1000), stat_of(uid=0, rdev=null)]
    sys = identity_sys(fstat=fstats)
    run([SetUser(1000, 1000, (), None)], ctx_for(sys))
    assert sys.of("fchown") == [("fchown", (0, 1000, 5))]   # gid left as it was
    assert index(sys.calls, lambda c: c[0] == "fchown") < index(
        sys.calls, lambda c: c[0] == "setresuid")


def test_stdio_chown_refusals_are_tolerated():
    sys = identity_sys(fstat=stat_of(uid=0), fchown=raising(errno.EPERM))
    run([SetUser(1000, 1000, (), None)], ctx_for(sys))
    assert len(sys.of("fchown")) == 3


PASSWD = b"""root:x:0:0:root:/root:/bin/sh
# comment:x:5:5::/nope:
broken
u:x:1000:1000::/home/u:/bin/sh
"""


def test_home_from_passwd_then_exec_env():
    assert identity.home_of(FakeSys(read_file=PASSWD), 1000) == "/home/u"
    assert identity.home_of(FakeSys(read_file=PASSWD), 0) == "/root"
    assert identity.home_of(FakeSys(read_file=PASSWD), 5) == "/"
    assert identity.home_of(FakeSys(read_file=raising(errno.ENOENT)), 0) == "/"

    sys = identity_sys(read_file=PASSWD)
    ctx = ctx_for(sys, exec_path="/bin/sh")
    run([SetUser(1000, 1000, (), None), Exec(("sh", "-c", "x"), ("PATH=/bin", "HOME="))], ctx)
    assert sys.of("execve") == [("execve", ("/bin/sh", ["sh", "-c", "x"],
                                            {"PATH": "/bin", "HOME": "/home/u"}))]


def test_exec_keeps_a_configured_home_and_adds_one_when_absent():
    assert proc.with_home(("HOME=/h", "A=1"), "/x") == {"HOME": "/h", "A": "1"}
    assert list(proc.with_home(("A=1",), "/")) == ["A", "HOME"]


def test_exec_failure_message():
    sys = FakeSys(execve=raising(errno.ENOEXEC))
    with pytest.raises(RuntimeFailure, match="exec /bin/x: exec format error"):
        run([Exec(("x",), ())], ctx_for(sys, exec_path="/bin/x"))


# --- namespace-wide settings ----------------------------------------------------

def test_sysctl_written_below_a_verified_procfs():
    sys = FakeSys(fstatfs_magic=C.PROC_SUPER_MAGIC)
    run([WriteSysctl("net.ipv4.ip_forward", "1")], ctx_for(sys))
    assert sys.names() == ["open", "fstatfs_magic", "openat2", "write", "close", "close"]
    assert sys.calls[0][1][0] == "/proc/sys"
    _, (dirfd, rel, flags, mode, resolve) = sys.calls[2]
    assert rel == "net/ipv4/ip_forward" and flags & os.O_ACCMODE == os.O_WRONLY
    for bit in (C.RESOLVE_NO_SYMLINKS, C.RESOLVE_NO_MAGICLINKS, C.RESOLVE_NO_XDEV,
                C.RESOLVE_BENEATH):
        assert resolve & bit
    assert sys.of("write")[0][1][1] == b"1"


def test_sysctl_refuses_a_proc_that_is_not_procfs():
    sys = FakeSys(fstatfs_magic=0x01021994)   # tmpfs
    with pytest.raises(RuntimeFailure, match="not on procfs"):
        run([WriteSysctl("kernel.shmmax", "1")], ctx_for(sys))
    assert "write" not in sys.names()
    assert sys.names().count("close") == 1


def test_sysctl_errors_in_runcs_words():
    sys = FakeSys(fstatfs_magic=C.PROC_SUPER_MAGIC, openat2=raising(errno.ENOENT))
    with pytest.raises(RuntimeFailure) as info:
        run([WriteSysctl("net.ipv4.bogus", "1")], ctx_for(sys))
    assert str(info.value) == "open /proc/sys/net/ipv4/bogus: no such file or directory"
    sys = FakeSys(fstatfs_magic=C.PROC_SUPER_MAGIC, write=raising(errno.EINVAL))
    with pytest.raises(RuntimeFailure, match="write /proc/sys/a/b: invalid argument"):
        run([WriteSysctl("a.b", "x")], ctx_for(sys))


def test_oom_score_adj_permission_denied_is_explained():
    sys = FakeSys(fstatfs_magic=C.PROC_SUPER_MAGIC, write=raising(errno.EACCES))
    with pytest.raises(RuntimeFailure) as info:
        run([SetOomScoreAdj(-998)], ctx_for(sys))
    text = str(info.value)
    assert "process.oomScoreAdj" in text and "permission denied" in text
    assert "CAP_SYS_RESOURCE" in text
    assert sys.of("openat2")[0][1][1] == "self/oom_score_adj"


def test_rlimit_mapping_and_error():
    sys = FakeSys()
    run([SetRlimit("RLIMIT_NOFILE", 1024, 2**64 - 1)], ctx_for(sys))
    # the spec's unlimited (2^64-1) is the kernel's RLIM_INFINITY as it is
    assert sys.of("setrlimit") == [("setrlimit", (resource.RLIMIT_NOFILE, 1024, 2**64 - 1))]
    sys = FakeSys(setrlimit=raising(errno.EPERM))
    with pytest.raises(RuntimeFailure) as info:
        run([SetRlimit("RLIMIT_NOFILE", 10, 99999999)], ctx_for(sys))
    assert "RLIMIT_NOFILE" in str(info.value) and "operation not permitted" in str(info.value)


def test_setrlimit_sets_the_kernels_limit_unlimited_included():
    pid = os.fork()
    if pid == 0:   # a child: the limit stays with it
        code = 1
        try:
            syscalls.setrlimit(syscalls.C.RLIMIT_CORE, 4096, 2**64 - 1)
            if resource.getrlimit(resource.RLIMIT_CORE) == (4096, resource.RLIM_INFINITY):
                try:
                    syscalls.setrlimit(syscalls.C.RLIMIT_CORE, 10, 5)   # soft above hard
                except OSError as e:
                    code = 0 if e.errno == errno.EINVAL else 3
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0


def test_simple_calls():
    sys = FakeSys()
    run([SetHostname("h"), BringUpLoopback(), SetNoNewPrivs()], ctx_for(sys))
    assert sys.calls == [("sethostname", ("h",)), ("link_up", ("lo",)),
                         ("prctl", (C.PR_SET_NO_NEW_PRIVS, 1))]


def test_close_fds_order():
    sys = FakeSys()
    run([CloseFds(5)], ctx_for(sys))
    assert sys.calls == [("set_inheritable", (i, True)) for i in range(5)] + [
        ("close_range_cloexec", (5,))]


# --- cwd ------------------------------------------------------------------------

def test_chdir_denied_as_root_retried_as_the_user():
    sys = FakeSys(fchdir=[None, None], getcwd="/w")
    attempts = []

    def fchdir(fd):
        attempts.append(fd)
        if len(attempts) == 1:
            raise OSError(errno.EACCES, "Permission denied")
    sys.returns["fchdir"] = fchdir
    ctx = ctx_for(sys)
    run([Chdir("/w")], ctx)
    assert "getcwd" not in sys.names()
    run([Chdir("/w", after_user=True)], ctx)
    assert len(attempts) == 2 and sys.names()[-1] == "getcwd"


def test_chdir_retry_is_a_no_op_after_success():
    sys = FakeSys(getcwd="/w")
    ctx = ctx_for(sys)
    run([Chdir("/w"), Chdir("/w", after_user=True)], ctx)
    assert sys.names().count("fchdir") == 1


def test_chdir_into_an_unreachable_directory_is_refused():
    for answer in ("(unreachable)/home", raising(errno.ENOENT)):
        sys = FakeSys(getcwd=answer)
        with pytest.raises(RuntimeFailure, match="outside the container's root"):
            run([Chdir("/proc/self/fd/7")], ctx_for(sys))


def test_chdir_missing_in_runcs_words():
    sys = FakeSys(openat2=raising(errno.ENOENT))
    with pytest.raises(RuntimeFailure) as info:
        run([Chdir("/nope")], ctx_for(sys))
    assert str(info.value) == ('chdir to cwd ("/nope") set in config.json failed: '
                               "no such file or directory")
