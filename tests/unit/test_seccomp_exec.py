"""The seccomp handlers against the recording double (what they ask the kernel
and libseccomp for), and the compiled filters against the real kernel in a
forked child (no root needed: no_new_privs lets anyone load a filter)."""
import errno
import json
import os
import signal
from pathlib import Path

import pytest

import pyrunc.syscalls as real_sys
from pyrunc.errors import RuntimeFailure
from pyrunc.executor.base import Context
from pyrunc.executor.seccomp import (
    Listener, Program, compile_filter, compile_seccomp, connect_listener, load_seccomp,
    process_state,
)
from pyrunc.plan.seccomp import parse_seccomp
from pyrunc.plan.steps import CompileSeccomp, ConnectSeccompListener, LoadSeccomp, Phase
from tests.doubles import RecordingSys

C = real_sys.C
ALLOW, ERRNO = "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"
MKDIR = real_sys.seccomp_syscall_number("mkdir")
REAL = Path("/work/shared/fixtures/real-configs")


class SeccompSys(RecordingSys):
    """The double, with syscall names resolved by the real libseccomp (a pure
    lookup) and kernel answers the tests choose."""

    def __init__(self, unsupported=(), load_result=0, pid="4242"):
        super().__init__()
        self.unsupported = unsupported
        self.load_result = load_result
        self.pid = pid

    def seccomp_syscall_number(self, name):
        return real_sys.seccomp_syscall_number(name)

    def seccomp_flags_supported(self, flags):
        self.calls.append(("seccomp_flags_supported", (flags,)))
        return not any(flags & bit for bit in self.unsupported)

    def seccomp_new(self, action):
        self.calls.append(("seccomp_new", (action,)))
        return "H"

    def seccomp_export(self, handle):
        self.calls.append(("seccomp_export", (handle,)))
        return b"\0" * 16

    def seccomp_load(self, bpf, flags):
        self.calls.append(("seccomp_load", (bpf, flags)))
        if "seccomp_load" in self.fail:
            e = self.fail["seccomp_load"]
            raise OSError(e, os.strerror(e))
        return self.load_result

    def readlinkat(self, dirfd, path):
        self.calls.append(("readlinkat", (dirfd, path)))
        return self.pid


def sc(*syscalls, default=ALLOW, **top):
    return parse_seccomp(dict(defaultAction=default, syscalls=list(syscalls), **top))


def ctx_for(sys, state=None):
    ctx = Context(sys=sys, config=None)
    ctx.state_json = json.dumps(state or {}).encode()
    return ctx


# --- compile ----------------------------------------------------------------------

def test_compile_adds_arches_and_rules_with_libseccomp_values():
    sys = SeccompSys()
    f = sc({"names": ["mkdir"], "action": ERRNO, "errnoRet": 5},
           {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"},
           {"names": ["ptrace"], "action": "SCMP_ACT_TRACE"},
           {"names": ["socket"], "action": ERRNO, "args": [
               {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
               {"index": 1, "value": 0xF, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]},
           {"names": ["nosuch_a", "nosuch_b"], "action": "SCMP_ACT_LOG"},
           {"names": ["nosuch_a", "uname"], "action": "SCMP_ACT_TRAP"},
           architectures=["SCMP_ARCH_X86", "SCMP_ARCH_X32"], default="SCMP_ACT_KILL")
    prog = compile_filter(sys, f)
    num = real_sys.seccomp_syscall_number
    assert sys.calls == [
        ("seccomp_new", (C.SCMP_ACT_KILL_THREAD,)),
        ("seccomp_add_arch", ("H", C.SCMP_ARCH_X86)),
        ("seccomp_add_arch", ("H", C.SCMP_ARCH_X32)),
        ("seccomp_add_rule", ("H", 0x00050005, MKDIR, [])),
        ("seccomp_add_rule", ("H", C.SCMP_ACT_KILL_PROCESS, num("getpid"), [])),
        ("seccomp_add_rule", ("H", 0x7FF00001, num("ptrace"), [])),   # TRACE(EPERM)
        ("seccomp_add_rule", ("H", 0x00050001, num("socket"),
                              [(0, C.PYRUNC_SCMP_CMP_EQ, 2, 0),
                               (1, C.PYRUNC_SCMP_CMP_MASKED_EQ, 0xF, 1)])),
        ("seccomp_add_rule", ("H", C.SCMP_ACT_TRAP, num("uname"), [])),
        ("seccomp_export", ("H",)),
        ("seccomp_release", ("H",)),
    ]
    assert prog == Program(b"\0" * 16, 0, False, ("nosuch_a", "nosuch_b"), "")


def test_every_action_value():
    sys = SeccompSys()
    names = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRAP", "SCMP_ACT_KILL_THREAD",
             "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_NOTIFY"]
    compile_filter(sys, sc(*({"names": ["mkdir"], "action": a} for a in names),
                           default=ERRNO, listenerPath="/a"))
    assert [c[1][1] for c in sys.of("seccomp_add_rule")] == [
        0x7FFF0000, 0x7FFC0000, 0x00030000, 0, 0x80000000, 0x7FC00000]


def test_flags_are_probed_and_passed():
    sys = SeccompSys()
    prog = compile_filter(sys, sc(flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                         "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))
    # TSYNC: one thread, nothing to sync (and the kernel refuses it with a listener)
    assert sys.of("seccomp_flags_supported") == [
        ("seccomp_flags_supported", (C.SECCOMP_FILTER_FLAG_LOG,)),
        ("seccomp_flags_supported", (C.SECCOMP_FILTER_FLAG_SPEC_ALLOW,))]
    assert prog.flags == C.SECCOMP_FILTER_FLAG_LOG | C.SECCOMP_FILTER_FLAG_SPEC_ALLOW


def test_an_unsupported_flag_names_linux_seccomp_flags():
    sys = SeccompSys(unsupported=(C.SECCOMP_FILTER_FLAG_SPEC_ALLOW,))
    with pytest.raises(RuntimeFailure, match=r"^linux\.seccomp\.flags\[1\]: "
                       "SECCOMP_FILTER_FLAG_SPEC_ALLOW is not supported by this kernel"):
        compile_filter(sys, sc(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))


def test_wait_killable_recv_goes_with_the_listener_only():
    wkr, new = C.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, C.SECCOMP_FILTER_FLAG_NEW_LISTENER
    sys = SeccompSys()
    flags = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    notify = {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}
    assert compile_filter(sys, sc(notify, flags=flags, listenerPath="/a")).flags == new | wkr
    # probed together with NEW_LISTENER: the kernel refuses it alone
    assert sys.of("seccomp_flags_supported") == [("seccomp_flags_supported", (wkr | new,))]
    assert compile_filter(SeccompSys(), sc(flags=flags)).flags == 0
    assert compile_filter(SeccompSys(), sc(notify, listenerPath="/a")).flags == new
    # a NOTIFY rule whose syscall is unknown here gives no listener
    prog = compile_filter(SeccompSys(), sc({"names": ["nosuch"], "action": "SCMP_ACT_NOTIFY"},
                                           listenerPath="/a"))
    assert prog.flags == 0 and not prog.listener


def test_libseccomp_errors_name_the_entry():
    sys = SeccompSys()
    sys.fail["seccomp_add_rule"] = errno.EINVAL
    with pytest.raises(RuntimeFailure, match=r"^linux\.seccomp\.syscalls\[1\]: .*syscall mkdir: "
                       "invalid argument"):
        compile_filter(sys, sc({"names": ["nosuch"], "action": ERRNO},
                               {"names": ["mkdir"], "action": ERRNO}))
    assert sys.names()[-1] == "seccomp_release"
    sys = SeccompSys()
    sys.fail["seccomp_add_arch"] = errno.EINVAL
    with pytest.raises(RuntimeFailure,
                       match=r"^linux\.seccomp\.architectures\[0\]: .*SCMP_ARCH_ARM"):
        compile_filter(sys, sc(architectures=["SCMP_ARCH_ARM"]))


def test_compile_step_reads_the_pid_and_closes_procfs():
    sys = SeccompSys(pid="31337")
    ctx = ctx_for(sys)
    listener = Listener("/a", sock=7, proc_fd=8)
    ctx.extra["seccomp_listener"] = listener
    compile_seccomp(CompileSeccomp(sc()), ctx)
    assert listener.pid == 31337 and listener.proc_fd == -1
    assert ("readlinkat", (8, "self")) in sys.calls and ("close", (8,)) in sys.calls
    assert isinstance(ctx.extra["seccomp"], Program)


# --- connect and load ---------------------------------------------------------------

def test_connect_failure_names_listener_path():
    sys = RecordingSys()
    sys.fail["unix_connect"] = errno.ENOENT
    with pytest.raises(RuntimeFailure, match=r"^linux\.seccomp\.listenerPath: .*connect "
                       "/run/agent.sock: no such file or directory$"):
        connect_listener(ConnectSeccompListener("/run/agent.sock"), ctx_for(sys))


def test_load_without_listener():
    sys = SeccompSys()
    ctx = ctx_for(sys)
    ctx.extra["seccomp"] = Program(b"x" * 8, C.SECCOMP_FILTER_FLAG_LOG, False)
    load_seccomp(LoadSeccomp(Phase.START), ctx)
    assert sys.calls == [("seccomp_load", (b"x" * 8, C.SECCOMP_FILTER_FLAG_LOG))]
    assert "seccomp" not in ctx.extra


STATE = {"ociVersion": "1.0.2", "id": "c1", "pid": 4242, "status": "creating",
         "bundle": "/b", "rootfs": "/b/rootfs", "created": "x", "owner": "",
         "annotations": {"a": "b"}}


def test_load_with_listener_sends_fd_and_state_then_closes():
    sys = SeccompSys(load_result=9)
    ctx = ctx_for(sys, STATE)
    ctx.extra["seccomp"] = Program(b"x" * 8, C.SECCOMP_FILTER_FLAG_NEW_LISTENER, True, (), "m=1")
    ctx.extra["seccomp_listener"] = Listener("/a", sock=7, pid=4343)
    load_seccomp(LoadSeccomp(), ctx)
    assert sys.names() == ["seccomp_load", "send_all_with_fds", "close", "close"]
    sock, payload, fds = sys.of("send_all_with_fds")[0][1]
    assert (sock, fds) == (7, [9])
    assert json.loads(payload) == {
        "ociVersion": "1.0.2", "fds": ["seccompFd"], "pid": 4343, "metadata": "m=1",
        "state": {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 4242,
                  "bundle": "/b", "annotations": {"a": "b"}}}
    assert {c[1][0] for c in sys.of("close")} == {7, 9}


def test_load_failure_is_reported_in_runc_words():
    sys = SeccompSys()
    sys.fail["seccomp_load"] = errno.EACCES
    ctx = ctx_for(sys)
    ctx.extra["seccomp"] = Program(b"x" * 8, 0, False)
    ctx.extra["seccomp_listener"] = Listener("/a", sock=7)
    with pytest.raises(RuntimeFailure, match="^error loading seccomp filter into kernel: "
                       "permission denied$"):
        load_seccomp(LoadSeccomp(), ctx)
    assert sys.of("close") == [("close", (7,))]


def test_send_failure_still_closes_both_fds():
    sys = SeccompSys(load_result=9)
    sys.fail["send_all_with_fds"] = errno.EPIPE
    ctx = ctx_for(sys, STATE)
    ctx.extra["seccomp"] = Program(b"x" * 8, 0, True)
    ctx.extra["seccomp_listener"] = Listener("/run/a.sock", sock=7)
    with pytest.raises(RuntimeFailure, match="agent at /run/a.sock: broken pipe"):
        load_seccomp(LoadSeccomp(), ctx)
    assert {c[1][0] for c in sys.of("close")} == {7, 9}


def test_process_state_leaves_out_empty_metadata():
    doc = json.loads(process_state(json.dumps({"ociVersion": "1.0.2", "id": "x", "pid": 1,
                                               "status": "running", "bundle": "/b"}), 5, ""))
    assert list(doc) == ["ociVersion", "fds", "pid", "state"]


# --- the real libseccomp and kernel ---------------------------------------------------

def test_docker_profile_compiles_for_three_arches():
    path = REAL / "docker-create-config.json"
    if not path.exists():
        pytest.skip(f"{path} not available")
    f = parse_seccomp(json.loads(path.read_text())["linux"]["seccomp"])
    prog = compile_filter(real_sys, f)
    native = compile_filter(real_sys, parse_seccomp(dict(json.loads(path.read_text())["linux"]
                                                         ["seccomp"], architectures=[])))
    assert len(prog.bpf) % 8 == 0 and len(prog.bpf) > len(native.bpf) > 8 * len(f.rules) // 2
    assert prog.flags == 0 and not prog.listener


def run_filtered(doc, probe):
    """Fork; the child sets no_new_privs, loads the filter compiled from doc,
    then runs probe() and exits with its result.  Returns the wait status."""
    prog = compile_filter(real_sys, parse_seccomp(doc))
    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            real_sys.prctl(C.PR_SET_NO_NEW_PRIVS, 1)
            real_sys.seccomp_load(prog.bpf, prog.flags)
            code = probe()
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def errno_of(fn):
    def probe():
        try:
            fn()
        except OSError as e:
            return e.errno
        return 0
    return probe


def test_errno_ret_is_honoured(tmp_path):
    doc = {"defaultAction": ALLOW, "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": ERRNO, "errnoRet": errno.EROFS}]}
    status = run_filtered(doc, errno_of(lambda: os.mkdir(tmp_path / "d")))
    assert os.waitstatus_to_exitcode(status) == errno.EROFS
    assert not (tmp_path / "d").exists()
    # and without the filter it works: the probe itself is sound
    assert os.waitstatus_to_exitcode(run_filtered({"defaultAction": ALLOW},
                                                  errno_of(lambda: os.mkdir(tmp_path / "d")))) == 0


def test_kill_process_is_sigsys():
    doc = {"defaultAction": ALLOW, "syscalls": [{"names": ["getppid"],
                                                 "action": "SCMP_ACT_KILL_PROCESS"}]}
    status = run_filtered(doc, lambda: os.getppid() and 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_an_arg_condition_bites_only_when_it_matches():
    import socket
    doc = {"defaultAction": ALLOW, "syscalls": [{"names": ["socket"], "action": ERRNO,
           "errnoRet": errno.EAFNOSUPPORT,
           "args": [{"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"}]}]}
    inet = run_filtered(doc, errno_of(lambda: socket.socket(socket.AF_INET).close()))
    unix = run_filtered(doc, errno_of(lambda: socket.socket(socket.AF_UNIX).close()))
    assert os.waitstatus_to_exitcode(inet) == errno.EAFNOSUPPORT
    assert os.waitstatus_to_exitcode(unix) == 0


def test_unknown_syscalls_are_skipped_not_fatal(tmp_path):
    doc = {"defaultAction": ALLOW, "syscalls": [
        {"names": ["no_such_syscall"], "action": ERRNO},
        {"names": ["no_such_syscall", "mkdir", "mkdirat"], "action": ERRNO, "errnoRet": 30}]}
    status = run_filtered(doc, errno_of(lambda: os.mkdir(tmp_path / "d")))
    assert os.waitstatus_to_exitcode(status) == 30
