"""plan/cloneinit.py: when create clones the init itself, and the way back."""
import pytest

from pyrunc.plan.cloneinit import clone_from_runtime, legacy
from pyrunc.plan.steps import (AwaitStart, BindRootfs, CloneInit, ConnectSeccompListener,
                               CreateNamespaces, CreateUserNamespace, EnterCgroups, Exec,
                               ExecAwaitingStart, ForkInit, JoinCgroup, JoinNamespace, Phase,
                               RunHooks, SetNoNewPrivs, SetTimeOffsets)

V1 = ("/sys/fs/cgroup/cpu/c1", "/sys/fs/cgroup/memory/c1")
V2 = "/sys/fs/cgroup/unified/c1"
ROOTFS = BindRootfs("/b/rootfs")


def classic(ns=("ipc", "uts", "network", "pid", "mount"), cgroupns=False, v1=V1, v2=V2):
    """What plan/cgroups.py enter_from_child makes of a create plan."""
    steps = [EnterCgroups(v1, v2)] if v1 or v2 else []
    steps += [CreateNamespaces(ns), ForkInit()]
    if cgroupns:
        steps.append(CreateNamespaces(("cgroup",)))
    return steps + [ROOTFS]


def test_the_init_is_cloned_into_its_namespaces_and_cgroup2_dir():
    assert clone_from_runtime(classic()) == [
        CloneInit(("ipc", "uts", "network", "pid", "mount"), V2), EnterCgroups(V1, ""), ROOTFS]


def test_a_new_cgroup_namespace_is_made_by_the_init_once_in_its_cgroups():
    # its root is the cgroup its maker is in: after the v1 joins, not at the clone
    for steps in (classic(cgroupns=True),
                  [EnterCgroups(V1, ""), CreateNamespaces(("pid", "cgroup")), ForkInit(), ROOTFS]):
        out = clone_from_runtime(steps)
        assert [type(s) for s in out] == [CloneInit, EnterCgroups, CreateNamespaces, BindRootfs]
        assert "cgroup" not in out[0].ns_types and out[2] == CreateNamespaces(("cgroup",))


def test_no_cgroups_at_all_still_clones():
    assert clone_from_runtime(classic(v1=(), v2="")) == [
        CloneInit(("ipc", "uts", "network", "pid", "mount"), ""), ROOTFS]


def test_only_v1_cgroups():
    out = clone_from_runtime(classic(v2=""))
    assert out[:2] == [CloneInit(("ipc", "uts", "network", "pid", "mount"), ""),
                       EnterCgroups(V1, "")]


@pytest.mark.parametrize("extra", [
    JoinNamespace("network", "/proc/1/ns/net"),      # setns order matters; pid/user apply to children
    CreateUserNamespace((), ()),                     # the maps come while the child waits
    SetTimeOffsets((("monotonic", 1, 0),)),          # before any process lives in it
    JoinCgroup(("/sys/fs/cgroup/cpu/c1",)),          # the runtime moves the child
], ids=lambda s: type(s).__name__)
def test_plans_that_need_the_intermediate_keep_it(extra):
    steps = classic()
    steps.insert(1, extra)
    assert clone_from_runtime(steps) == steps


def test_no_new_pid_namespace_no_clone():
    steps = [EnterCgroups(V1, V2), CreateNamespaces(("mount",)), ROOTFS]
    assert clone_from_runtime(steps) == steps
    time_ns = classic(ns=("pid", "time"))
    assert clone_from_runtime(time_ns) == time_ns


@pytest.mark.parametrize("kw", [{}, {"cgroupns": True}, {"v2": ""}, {"v1": (), "v2": ""}])
def test_legacy_gives_the_classic_plan_back(kw):
    steps = classic(**kw)
    assert legacy(clone_from_runtime(steps)) == steps


def test_legacy_of_a_classic_plan_is_itself():
    assert legacy(classic()) == classic()


# --- CloneInit.vfork: the init in the runtime's memory until it execs -----------------

ARGS, ENV = ("true",), ("PATH=/bin",)


def _vfork(tail):
    out = clone_from_runtime(classic() + list(tail))
    return next(s for s in out if isinstance(s, CloneInit)).vfork


@pytest.mark.parametrize("tail", [
    [SetNoNewPrivs(), Exec(ARGS, ENV)],                          # run: the program at once
    [SetNoNewPrivs(), ExecAwaitingStart(ARGS, ENV)],             # create: pyrunc-init waits
    [ExecAwaitingStart(ARGS, ENV), RunHooks("poststart", (), Phase.POSTSTART)],
], ids=["run", "create", "poststart-hooks"])
def test_an_init_that_only_sets_up_and_execs_may_vfork(tail):
    assert _vfork(tail)


@pytest.mark.parametrize("tail", [
    [RunHooks("createRuntime", ()), ExecAwaitingStart(ARGS, ENV)],     # the runtime answers
    [RunHooks("createContainer", (), Phase.CONTAINER), ExecAwaitingStart(ARGS, ENV)],
    [ConnectSeccompListener("/run/agent.sock"), ExecAwaitingStart(ARGS, ENV)],
    [AwaitStart(), RunHooks("startContainer", (), Phase.START), Exec(ARGS, ENV)],
    [SetNoNewPrivs()],                                                  # no exec at the end
], ids=["runtime-hooks", "container-hooks", "seccomp-agent", "await-start", "no-exec"])
def test_an_init_that_waits_for_the_runtime_or_a_start_does_not(tail):
    assert not _vfork(tail)
