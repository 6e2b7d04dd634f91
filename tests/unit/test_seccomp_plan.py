"""linux.seccomp -> SeccompFilter, and where the seccomp steps land in a plan."""
import json
from pathlib import Path

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan.seccomp import Action, Condition, Rule, add_seccomp, parse_seccomp
from pyrunc.plan.steps import (
    AwaitStart, CloseFds, CompileSeccomp, ConnectSeccompListener, CreateNamespaces,
    DropBoundingSet, Exec, LoadSeccomp, Phase, SetNoNewPrivs, SetUser,
)
from pyrunc.spec.config import Config

REAL = Path("/work/shared/fixtures/real-configs")
ERRNO = "SCMP_ACT_ERRNO"
ALLOW = "SCMP_ACT_ALLOW"


def real(name):
    path = REAL / f"{name}-create-config.json"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return json.loads(path.read_text())


def sc(*syscalls, default=ALLOW, **top):
    return dict(defaultAction=default, syscalls=list(syscalls), **top)


def config(seccomp, nnp=False, **process):
    proc = {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin"], "noNewPrivileges": nnp,
            "capabilities": {"bounding": ["CAP_KILL"]}}
    proc.update(process)
    d = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": proc,
         "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}], "seccomp": seccomp}}
    return Config.from_dict(d, "/tmp/bundle")


# --- the filter ------------------------------------------------------------------

def test_docker_profile():
    f = parse_seccomp(real("docker")["linux"]["seccomp"])
    assert f.default == Action(ERRNO, 1)          # no defaultErrnoRet: EPERM
    assert f.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    assert f.flags == () and not f.notifies
    assert len(f.rules) == 357                    # one per name, none equal to the default
    by_name = {}
    for r in f.rules:
        by_name.setdefault(r.syscall, []).append(r)
    assert by_name["read"] == [Rule("read", Action(ALLOW), (), "linux.seccomp.syscalls[0]")]
    assert by_name["clone3"][0].action == Action(ERRNO, 38)
    # personality: five entries of one EQ condition each, so five ORed rules
    assert [r.conditions for r in by_name["personality"]] == [
        (Condition(0, "SCMP_CMP_EQ", v),) for v in (0, 8, 131072, 131080, 4294967295)]
    assert by_name["clone"][0].conditions == (Condition(0, "SCMP_CMP_MASKED_EQ", 2114060288, 0),)


def test_podman_profile_keeps_errno_rules_that_differ_from_the_default():
    f = parse_seccomp(real("podman")["linux"]["seccomp"])
    assert f.default == Action(ERRNO, 38)
    assert {r.action for r in f.rules} == {Action(ALLOW), Action(ERRNO, 1)}


@pytest.mark.parametrize("name, ret, want", [
    ("SCMP_ACT_KILL", None, Action("SCMP_ACT_KILL_THREAD")),
    ("SCMP_ACT_KILL_THREAD", None, Action("SCMP_ACT_KILL_THREAD")),
    ("SCMP_ACT_KILL_PROCESS", None, Action("SCMP_ACT_KILL_PROCESS")),
    ("SCMP_ACT_TRAP", None, Action("SCMP_ACT_TRAP")),
    ("SCMP_ACT_ERRNO", None, Action(ERRNO, 1)),
    ("SCMP_ACT_ERRNO", 38, Action(ERRNO, 38)),
    ("SCMP_ACT_ERRNO", 0x10005, Action(ERRNO, 5)),      # 16 bits, as runc truncates
    ("SCMP_ACT_TRACE", None, Action("SCMP_ACT_TRACE", 1)),
    ("SCMP_ACT_TRACE", 7, Action("SCMP_ACT_TRACE", 7)),
    ("SCMP_ACT_LOG", None, Action("SCMP_ACT_LOG")),
    ("SCMP_ACT_ALLOW", None, Action(ALLOW)),
])
def test_actions(name, ret, want):
    entry = {"names": ["mkdir"], "action": name}
    if ret is not None:
        entry["errnoRet"] = ret
    f = parse_seccomp(sc(entry, default="SCMP_ACT_LOG" if name == ALLOW else ALLOW))
    assert [r.action for r in f.rules] == [want]


def test_notify_action_and_listener():
    f = parse_seccomp(sc({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                         listenerPath="/run/agent.sock", listenerMetadata="meta"))
    assert f.notifies
    assert [r.syscall for r in f.rules] == ["mkdir", "mkdirat"]
    assert (f.listener_path, f.listener_metadata) == ("/run/agent.sock", "meta")


def test_default_errno_ret():
    f = parse_seccomp(sc(default=ERRNO, defaultErrnoRet=38))
    assert f.default == Action(ERRNO, 38) and f.rules == ()


def test_rules_equal_to_the_default_are_dropped():
    f = parse_seccomp(sc({"names": ["a"], "action": ERRNO},                  # ERRNO(EPERM)
                         {"names": ["b"], "action": ERRNO, "errnoRet": 1},
                         {"names": ["c"], "action": ERRNO, "errnoRet": 2},
                         {"names": ["d"], "action": ALLOW},
                         default=ERRNO))
    assert [(r.syscall, r.action) for r in f.rules] == [("c", Action(ERRNO, 2)),
                                                        ("d", Action(ALLOW))]
    # KILL and KILL_THREAD are one action
    f = parse_seccomp(sc({"names": ["a"], "action": "SCMP_ACT_KILL_THREAD"},
                         {"names": ["b"], "action": "SCMP_ACT_KILL_PROCESS"},
                         default="SCMP_ACT_KILL"))
    assert [r.syscall for r in f.rules] == ["b"]


def test_conditions_on_different_args_are_one_rule():
    f = parse_seccomp(sc({"names": ["socket", "socketpair"], "action": ERRNO, "args": [
        {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 0xF, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}))
    both = (Condition(0, "SCMP_CMP_EQ", 2), Condition(1, "SCMP_CMP_MASKED_EQ", 0xF, 1))
    assert [(r.syscall, r.conditions) for r in f.rules] == [("socket", both), ("socketpair", both)]


def test_a_repeated_arg_index_makes_every_condition_its_own_rule():
    # runc 1.1: as soon as one index repeats, all conditions are ORed,
    # including the one on another argument
    f = parse_seccomp(sc({"names": ["personality"], "action": ERRNO, "args": [
        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 3, "op": "SCMP_CMP_GT"}]}))
    assert [r.conditions for r in f.rules] == [
        (Condition(0, "SCMP_CMP_EQ", 1),), (Condition(0, "SCMP_CMP_EQ", 2),),
        (Condition(1, "SCMP_CMP_GT", 3),)]


def test_all_operators():
    ops = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
           "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]
    f = parse_seccomp(sc(*({"names": ["x"], "action": ERRNO,
                            "args": [{"index": 5, "value": 2**64 - 1, "op": op}]} for op in ops)))
    assert [r.conditions[0].op for r in f.rules] == ops
    assert f.rules[0].conditions[0] == Condition(5, "SCMP_CMP_NE", 2**64 - 1, 0)


def test_duplicate_architectures_and_flags_are_kept_once():
    f = parse_seccomp(sc(architectures=["SCMP_ARCH_X86", "SCMP_ARCH_AARCH64", "SCMP_ARCH_X86"],
                         flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                "SECCOMP_FILTER_FLAG_LOG"]))
    assert f.architectures == ("SCMP_ARCH_X86", "SCMP_ARCH_AARCH64")
    assert f.flags == ("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW")


E = {"names": ["getpid"], "action": ALLOW}


@pytest.mark.parametrize("doc, path, words", [
    (sc(default="SCMP_ACT_BOGUS"), "linux.seccomp.defaultAction", "not a seccomp action"),
    (sc(default="SCMP_ACT_NOTIFY", listenerPath="/a"), "linux.seccomp.defaultAction",
     "cannot be the default action"),
    (sc(default=ALLOW, defaultErrnoRet=1), "linux.seccomp.defaultErrnoRet", "not supported"),
    (sc(E, architectures=["SCMP_ARCH_X86", "SCMP_ARCH_VAX"]), "linux.seccomp.architectures[1]",
     "SCMP_ARCH_VAX"),
    (sc(flags=["SECCOMP_FILTER_FLAG_NOPE"]), "linux.seccomp.flags[0]", "not a seccomp filter flag"),
    (sc(E, E, E, {"names": ["x"], "action": "SCMP_ACT_BOGUS"}), "linux.seccomp.syscalls[3].action",
     "not a seccomp action"),
    (sc({"names": [], "action": ERRNO}), "linux.seccomp.syscalls[0].names", "at least one"),
    (sc({"names": ["a", ""], "action": ERRNO}), "linux.seccomp.syscalls[0].names[1]", "non-empty"),
    (sc({"names": ["a"], "action": ALLOW, "errnoRet": 3}), "linux.seccomp.syscalls[0].errnoRet",
     "not supported with action SCMP_ACT_ALLOW"),
    (sc({"names": ["a"], "action": ERRNO, "errnoRet": -1}), "linux.seccomp.syscalls[0].errnoRet",
     "uint32"),
    (sc(E, {"names": ["a"], "action": ERRNO, "args": [
        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
        {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}),
     "linux.seccomp.syscalls[1].args[1].index", "out of range"),
    (sc({"names": ["a"], "action": ERRNO, "args": [{"index": 0, "value": 1, "op": "EQ"}]}),
     "linux.seccomp.syscalls[0].args[0].op", "not a seccomp operator"),
    (sc({"names": ["a"], "action": ERRNO,
         "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}),
     "linux.seccomp.syscalls[0].args[0].value", "uint64"),
    (sc({"names": ["a"], "action": ERRNO,
         "args": [{"index": 0, "value": 1, "valueTwo": 2**64, "op": "SCMP_CMP_EQ"}]}),
     "linux.seccomp.syscalls[0].args[0].valueTwo", "uint64"),
    (sc({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}), "linux.seccomp.listenerPath",
     "required"),
    (sc({"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/a"),
     "linux.seccomp.syscalls[0].names[1]", "cannot be used for the write syscall"),
    (sc({"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/a"),
     "linux.seccomp.syscalls[0].names[0]", "sendmsg"),
])
def test_errors_name_the_json_path(doc, path, words):
    with pytest.raises(ConfigError) as e:
        parse_seccomp(doc)
    assert e.value.path == path
    assert words in e.value.message


# --- placement -------------------------------------------------------------------

def _around(steps, kind):
    i = next(i for i, s in enumerate(steps) if isinstance(s, kind))
    return steps[i - 1], steps[i + 1]


def test_without_nnp_the_filter_is_loaded_before_the_identity_switch():
    from pyrunc.plan.build import build_plan
    plan = build_plan(Config.from_dict(real("docker"), "/tmp/bundle"), cid="c")
    steps = list(plan.steps)
    i = next(i for i, s in enumerate(steps) if isinstance(s, CompileSeccomp))
    assert isinstance(steps[i + 1], LoadSeccomp) and steps[i + 1].phase is Phase.CONTAINER
    assert isinstance(steps[i + 2], DropBoundingSet)
    assert not any(isinstance(s, ConnectSeccompListener) for s in steps)
    assert sum(isinstance(s, (CompileSeccomp, LoadSeccomp)) for s in steps) == 2


def test_with_nnp_the_filter_is_loaded_right_before_exec():
    steps = add_seccomp(config(sc(E), nnp=True), [
        CreateNamespaces(("pid",)), DropBoundingSet(()), SetUser(0, 0, (), None), AwaitStart(),
        SetNoNewPrivs(), CloseFds(3), Exec(("sh",), ())])
    assert [type(s) for s in steps] == [CreateNamespaces, CompileSeccomp, DropBoundingSet, SetUser,
                                        AwaitStart, SetNoNewPrivs, CloseFds, LoadSeccomp, Exec]
    assert steps[7].phase is Phase.START and steps[1].phase is Phase.CONTAINER


def test_the_listener_is_connected_before_any_namespace():
    doc = sc({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/run/a.sock")
    from pyrunc.plan.build import build_plan
    plan = build_plan(config(doc), cid="c")
    ns = [s for s in plan.phase(Phase.NAMESPACES) if type(s).__name__ != "EnterCgroups"]
    assert ns[0] == ConnectSeccompListener("/run/a.sock")
    assert len([s for s in plan.steps if isinstance(s, ConnectSeccompListener)]) == 1


def test_no_seccomp_no_steps():
    steps = [DropBoundingSet(()), Exec(("sh",), ())]
    assert add_seccomp(config(None), steps) == steps


def test_exec_plan_carries_the_containers_filter():
    from pyrunc.exec_into import exec_plan
    from pyrunc.spec.config import Process
    base = config(sc({"names": ["mkdir"], "action": ERRNO}))
    for nnp, phase in ((False, Phase.CONTAINER), (True, Phase.START)):
        proc = Process.from_dict({"args": ["ls"], "cwd": "/", "env": ["PATH=/bin"],
                                  "noNewPrivileges": nnp})
        _, plan = exec_plan(base, 4242, proc, 0, None)
        steps = list(plan.steps)
        load = next(s for s in steps if isinstance(s, LoadSeccomp))
        assert load.phase is phase
        if nnp:   # pyrunc-init spawns the program after that: ExecSpawn
            assert type(steps[steps.index(load) + 1]).__name__ == "ExecSpawn"
            assert isinstance(steps[steps.index(load) - 1], CloseFds)


def test_plan_renders():
    from pyrunc.commands.plan import _jsonable
    from pyrunc.plan.build import build_plan
    plan = build_plan(Config.from_dict(real("docker"), "/tmp/bundle"), cid="c")
    text = plan.describe()
    assert "CompileSeccomp(default=SCMP_ACT_ERRNO(1), 357 rules" in text
    assert "LoadSeccomp()" in text
    doc = json.loads(json.dumps(plan.to_list(), default=_jsonable))
    compile_ = next(d for d in doc if d["step"] == "CompileSeccomp")
    assert compile_["filter"]["default"] == {"name": ERRNO, "ret": 1}
    assert next(d for d in doc if d["step"] == "LoadSeccomp")["phase"] == "container"
