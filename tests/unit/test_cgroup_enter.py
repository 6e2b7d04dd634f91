"""plan/cgroups.enter_from_child: when the child joins its cgroups itself."""
from pyrunc.plan.cgroups import enter_from_child
from pyrunc.plan.steps import (CreateCgroup, CreateNamespaces, CreateUserNamespace, EnterCgroups,
                               ForkInit, JoinCgroup, JoinNamespace, OpenEarly, SetCpuAffinity,
                               SetHostname)

V1, V2 = "/sys/fs/cgroup/cpu/c", "/sys/fs/cgroup/unified/c"
MOUNT = "/sys/fs/cgroup/unified"


def _create(*ns_steps):
    return [CreateCgroup(V1, "/sys/fs/cgroup/cpu", ("cpu",)), JoinCgroup((V1, V2)),
            *ns_steps, SetHostname("h")]


def test_create_joins_from_the_child_and_makes_the_cgroup_ns_in_the_init():
    steps = enter_from_child(_create(CreateNamespaces(("pid", "mount", "cgroup")), ForkInit()),
                             MOUNT)
    assert steps == [CreateCgroup(V1, "/sys/fs/cgroup/cpu", ("cpu",)),
                     EnterCgroups((V1,), V2), CreateNamespaces(("pid", "mount")), ForkInit(),
                     CreateNamespaces(("cgroup",)), SetHostname("h")]


def test_exec_opens_the_cgroup_ns_early_and_joins_it_in_the_forked_process():
    ns = "/proc/9/ns/cgroup"
    steps = enter_from_child(
        [JoinCgroup((V1, V2)), JoinNamespace("pid", "/proc/9/ns/pid"),
         JoinNamespace("mount", "/proc/9/ns/mnt"), JoinNamespace("cgroup", ns), ForkInit()], MOUNT)
    assert steps == [EnterCgroups((V1,), V2), OpenEarly(ns),
                     JoinNamespace("pid", "/proc/9/ns/pid"), JoinNamespace("mount", "/proc/9/ns/mnt"),
                     ForkInit(), JoinNamespace("cgroup", ns)]


def test_a_v1_only_host_keeps_the_namespace_order():
    steps = enter_from_child(_create(CreateNamespaces(("pid", "cgroup")), ForkInit()), None)
    assert steps[1:4] == [EnterCgroups((V1, V2), ""), CreateNamespaces(("pid", "cgroup")),
                          ForkInit()]


def test_the_runtime_still_joins_when_the_child_cannot():
    cases = [
        _create(CreateNamespaces(("mount",))),                       # no ForkInit: no pid ns
        _create(CreateUserNamespace((), ()), CreateNamespaces(("pid",)), ForkInit()),
        [SetCpuAffinity((0,), "f"), JoinCgroup((V1,)), SetCpuAffinity((1,), "f"),
         JoinNamespace("pid", "/proc/9/ns/pid"), ForkInit()],        # exec with execCPUAffinity
    ]
    for steps in cases:
        assert enter_from_child(steps, MOUNT) == steps


def test_born_in_cgroup_moves_the_child_only_where_the_fork_could_not():
    from pyrunc.executor.base import Context
    from pyrunc.executor.cgroups import born_in_cgroup
    from pyrunc.plan.steps import BornInCgroup
    from tests.doubles import RecordingSys
    sys = RecordingSys()
    ctx = Context(sys=sys, config=None)
    ctx.extra.update(child_pid=42, born_in_cgroup=True)
    born_in_cgroup(BornInCgroup(V2), ctx)
    assert sys.calls == []                       # clone3 put it there
    del ctx.extra["born_in_cgroup"]              # launch fell back to os.fork()
    born_in_cgroup(BornInCgroup(V2), ctx)
    assert sys.of("write_file") == [("write_file", (f"{V2}/cgroup.procs", "42"))]
