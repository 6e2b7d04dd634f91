"""plan/execspawn.shape_for_spawn: an exec plan for pyrunc-init's spawn mode."""
from pyrunc.plan.execspawn import may_vfork, shape_for_spawn
from pyrunc.plan.steps import (BornInCgroup, CloseFds, ConnectSeccompListener, EnterCgroups, Exec,
                               ExecSpawn, ForkInit, JoinCgroup, JoinNamespace, OpenEarly,
                               SetCpuAffinity, SetOomScoreAdj, SetupConsole, SetUser)

V1, V2, MOUNT = "/sys/fs/cgroup/cpu/c", "/sys/fs/cgroup/unified/c", "/sys/fs/cgroup/unified"
PID, MNT = JoinNamespace("pid", "/proc/9/ns/pid"), JoinNamespace("mount", "/proc/9/ns/mnt")


def _exec(*extra, join=(V1, V2)):
    return [JoinCgroup(join), PID, MNT, ForkInit(), *extra, SetUser(0, 0, (), None),
            CloseFds(3), Exec(("true",), ("PATH=/bin",))]


def test_pyrunc_init_forks_the_program_and_the_child_is_born_in_its_cgroups():
    assert shape_for_spawn(_exec(), MOUNT, False) == [
        BornInCgroup(V2), EnterCgroups((V1,), ""), PID, MNT, SetUser(0, 0, (), None),
        CloseFds(3), ExecSpawn(("true",), ("PATH=/bin",), False, vfork=True)]


def test_terminal_session_and_host_proc_for_what_needs_them():
    steps = shape_for_spawn(_exec(SetupConsole((24, 80), False), SetOomScoreAdj(5),
                                  join=(V1,)), None, True)
    assert steps[:2] == [EnterCgroups((V1,), ""), OpenEarly("/proc")]
    assert SetupConsole((24, 80), False, take_ctty=False) in steps
    assert steps[-1] == ExecSpawn(("true",), ("PATH=/bin",), True, vfork=True)
    user = shape_for_spawn([JoinNamespace("user", "/proc/9/ns/user"), *_exec(join=(V1,))],
                           None, False)
    assert OpenEarly("/proc") in user          # SetUser reads self/setgroups there


def test_exec_cpu_affinity_keeps_the_runtimes_join():
    aff = [SetCpuAffinity((0,), "f"), JoinCgroup((V1, V2)), SetCpuAffinity((1,), "f")]
    steps = shape_for_spawn(aff + _exec(join=())[1:], MOUNT, False)
    assert steps[:3] == aff and isinstance(steps[-1], ExecSpawn)
    assert not any(isinstance(s, (ForkInit, BornInCgroup, EnterCgroups)) for s in steps)


def test_a_seccomp_listener_keeps_the_python_exec():
    steps = [ConnectSeccompListener("/run/a.sock"), *_exec()]
    assert shape_for_spawn(steps, MOUNT, False) == steps


def test_a_spawn_plan_whose_child_waits_for_nothing_may_vfork():
    for steps in (shape_for_spawn(_exec(), MOUNT, False),             # born in v2, joins v1
                  shape_for_spawn(_exec(join=()), MOUNT, False)):     # no cgroups at all
        assert may_vfork(steps) and steps[-1].vfork   # the plan says so, as CloneInit.vfork


def test_a_child_the_runtime_acts_on_first_is_forked():
    # execCPUAffinity: the runtime joins the cgroup and pins the CPUs while the child waits
    aff = [SetCpuAffinity((0,), "f"), JoinCgroup((V1, V2)), SetCpuAffinity((1,), "f")]
    steps = shape_for_spawn(aff + _exec(join=())[1:], MOUNT, False)
    assert not may_vfork(steps) and not steps[-1].vfork
    # a seccomp agent: the Python child execs the program itself
    assert not may_vfork(shape_for_spawn([ConnectSeccompListener("/run/a.sock"), *_exec()],
                                         MOUNT, False))
