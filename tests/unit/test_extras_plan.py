"""plan.extras: scheduler, I/O priority, personality, memory policy, exec CPU
affinity, net devices, and the settings pyrunc refuses (LSM labels, Intel RDT)."""
import pytest

from pyrunc.commands.features import describe
from pyrunc.errors import ConfigError
from pyrunc.exec_into import exec_plan
from pyrunc.plan import extras
from pyrunc.plan.build import build_plan
from pyrunc.plan.extras import (add_extras, around_cgroup_join, format_list,
                                interface_name_problem, net_device_steps, parse_cpu_list)
from pyrunc.plan.process import plan_process
from pyrunc.plan.steps import (
    Chdir, CompileSeccomp, DropBoundingSet, JoinCgroup, LoadSeccomp, MoveNetDevice, Phase,
    RunHooks, SetCpuAffinity, SetIOPriority, SetMemoryPolicy, SetPersonality, SetRlimit,
    SetScheduler,
)
from pyrunc.spec.config import Config, Process


class FakeHost:
    def __init__(self, apparmor=False, selinux=False, resctrl=False, nodes=(0,)):
        self._a, self._s, self._r, self._n = apparmor, selinux, resctrl, frozenset(nodes)

    def apparmor_enabled(self):
        return self._a

    def selinux_enabled(self):
        return self._s

    def resctrl_mounted(self):
        return self._r

    def numa_nodes(self):
        return self._n


def cfg(process=None, linux=None, **top):
    proc = {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin"],
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10}]}
    proc.update(process or {})
    d = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": proc,
         "linux": {"namespaces": [{"type": "mount"}, {"type": "network"}], **(linux or {})}}
    d.update(top)
    return Config.from_dict(d, "/tmp/bundle")


def extras_of(config, host=None, for_exec=False, warn=None):
    container, _ = plan_process(config, preserve_fds=0, userns=False, for_exec=for_exec)
    return add_extras(config, container, for_exec=for_exec, host=host or FakeHost(),
                      warn=warn or (lambda text: None))


def mine(steps):
    kinds = (SetMemoryPolicy, SetPersonality, SetIOPriority, SetScheduler)
    return [s for s in steps if isinstance(s, kinds)]


def problem(config, host=None, for_exec=False):
    with pytest.raises(ConfigError) as e:
        extras_of(config, host, for_exec)
    return e.value


# --- where the steps go ------------------------------------------------------

def test_nothing_asked_nothing_added():
    config = cfg()
    container, _ = plan_process(config, preserve_fds=0, userns=False)
    assert add_extras(config, container, host=FakeHost()) == container


def test_all_four_before_the_identity_switch_in_a_fixed_order():
    config = cfg({"scheduler": {"policy": "SCHED_BATCH", "nice": 5},
                  "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}},
                 {"personality": {"domain": "LINUX32"},
                  "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0"}})
    steps = extras_of(config)
    names = [type(s).__name__ for s in steps]
    at = names.index("SetMemoryPolicy")
    assert names[at:at + 5] == ["SetMemoryPolicy", "SetPersonality", "SetIOPriority",
                                "SetScheduler", "Chdir"]
    assert names.index("SetRlimit") < at < names.index("DropBoundingSet")
    assert mine(steps) == [SetMemoryPolicy("MPOL_BIND", (0,), ()), SetPersonality("LINUX32"),
                           SetIOPriority("IOPRIO_CLASS_IDLE", 0),
                           SetScheduler("SCHED_BATCH", nice=5)]
    assert all(s.phase is Phase.CONTAINER for s in mine(steps))


def test_build_plan_puts_them_before_seccomp_and_the_identity_switch():
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO"}]}
    config = cfg({"scheduler": {"policy": "SCHED_OTHER"}},
                 {"personality": {"domain": "LINUX32"}, "seccomp": seccomp})
    steps = list(build_plan(config, cid="c").steps)
    kinds = [type(s) for s in steps]
    # a profile that forbids personality(2) must not stop the runtime applying it
    assert kinds.index(SetPersonality) < kinds.index(LoadSeccomp)
    assert kinds.index(SetScheduler) < kinds.index(CompileSeccomp) < kinds.index(DropBoundingSet)
    assert kinds.index(SetRlimit) < kinds.index(SetPersonality)


def test_exec_gets_its_own_process_settings_and_the_containers_linux_ones():
    config = cfg(linux={"personality": {"domain": "LINUX32"},
                        "memoryPolicy": {"mode": "MPOL_LOCAL"}})
    proc = Process.from_dict({"args": ["true"], "cwd": "/",
                              "scheduler": {"policy": "SCHED_IDLE"},
                              "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 7},
                              "execCPUAffinity": {"initial": "0", "final": "1"}})
    _, plan = exec_plan(config, 1234, proc, 0, {"cpu": "/sys/fs/cgroup/cpu/c"})
    steps = list(plan.steps)
    kinds = [type(s) for s in steps]
    assert kinds[:3] == [SetCpuAffinity, JoinCgroup, SetCpuAffinity]
    assert steps[0] == SetCpuAffinity((0,), "process.execCPUAffinity.initial")
    assert steps[2] == SetCpuAffinity((1,), "process.execCPUAffinity.final")
    assert all(s.phase is Phase.CGROUPS for s in steps[:3])
    assert mine(steps) == [SetMemoryPolicy("MPOL_LOCAL"), SetPersonality("LINUX32"),
                           SetIOPriority("IOPRIO_CLASS_BE", 7), SetScheduler("SCHED_IDLE")]
    assert kinds.index(SetScheduler) < kinds.index(Chdir)


def test_create_never_applies_exec_cpu_affinity():
    # runtime-spec: "not applicable to the container's init process"
    config = cfg({"execCPUAffinity": {"initial": "0", "final": "0"}})
    assert not any(isinstance(s, SetCpuAffinity) for s in build_plan(config, cid="c").steps)


def test_exec_checks_labels_but_not_the_container_wide_settings():
    config = cfg(linux={"mountLabel": "x", "intelRdt": {"closID": "c"}})
    extras_of(config, for_exec=True)   # the container exists already: not exec's business
    with_label = cfg({"selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0"})
    assert problem(with_label, for_exec=True).path == "process.selinuxLabel"


# --- scheduler -----------------------------------------------------------------

@pytest.mark.parametrize("sched, expected", [
    ({"policy": "SCHED_OTHER"}, SetScheduler("SCHED_OTHER")),
    ({"policy": "SCHED_BATCH", "nice": -20}, SetScheduler("SCHED_BATCH", nice=-20)),
    ({"policy": "SCHED_FIFO", "priority": 99, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
     SetScheduler("SCHED_FIFO", priority=99, flags=("SCHED_FLAG_RESET_ON_FORK",))),
    ({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 20},
     SetScheduler("SCHED_DEADLINE", runtime=10, deadline=20)),
    ({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 20, "period": 20},
     SetScheduler("SCHED_DEADLINE", runtime=10, deadline=20, period=20)),
])
def test_scheduler_step(sched, expected):
    assert mine(extras_of(cfg({"scheduler": sched}))) == [expected]


@pytest.mark.parametrize("sched, path, words", [
    ({"policy": "SCHED_ISO"}, "process.scheduler.policy", "not implemented by the Linux kernel"),
    ({"policy": "SCHED_OTHER", "nice": 20}, "process.scheduler.nice", "out of range"),
    ({"policy": "SCHED_OTHER", "nice": -21}, "process.scheduler.nice", "out of range"),
    ({"policy": "SCHED_FIFO"}, "process.scheduler", "priority from 1 to 99, not 0"),
    ({"policy": "SCHED_RR", "priority": 100}, "process.scheduler.priority", "1 to 99"),
    ({"policy": "SCHED_BATCH", "priority": 1}, "process.scheduler.priority", "takes no priority"),
    ({"policy": "SCHED_DEADLINE"}, "process.scheduler", "0 < runtime <= deadline"),
    ({"policy": "SCHED_DEADLINE", "runtime": 30, "deadline": 20},
     "process.scheduler", "runtime <= deadline"),
    ({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 30, "period": 20},
     "process.scheduler", "deadline <= period"),
    ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_NOPE"]}, "process.scheduler.flags",
     'unknown scheduler flag "SCHED_FLAG_NOPE"'),
])
def test_scheduler_refused(sched, path, words):
    e = problem(cfg({"scheduler": sched}))
    assert e.path == path and words in e.message


def test_kernel_numbers():
    # uapi values; a typo here would set some other policy/class/mode silently
    assert extras.SCHED_POLICIES["SCHED_IDLE"] == 5 and extras.SCHED_POLICIES["SCHED_DEADLINE"] == 6
    assert extras.IOPRIO_CLASSES == {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2,
                                     "IOPRIO_CLASS_IDLE": 3}
    assert extras.PERSONALITY_DOMAINS["LINUX32"] == 0x0008
    assert extras.MPOL_MODES["MPOL_LOCAL"] == 4
    assert extras.MPOL_FLAGS["MPOL_F_STATIC_NODES"] == 1 << 15


# --- I/O priority, personality -------------------------------------------------

@pytest.mark.parametrize("prio", [-1, 8])
def test_io_priority_range(prio):
    e = problem(cfg({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": prio}}))
    assert e.path == "process.ioPriority.priority"


def test_personality_flags_are_ignored_with_a_warning():
    said = []
    steps = extras_of(cfg(linux={"personality": {"domain": "LINUX", "flags": ["X"]}}),
                      warn=said.append)
    assert mine(steps) == [SetPersonality("LINUX")]
    assert len(said) == 1 and "linux.personality.flags" in said[0] and "ignored" in said[0]


def test_personality_needs_a_domain():
    assert problem(cfg(linux={"personality": {}})).path == "linux.personality"


# --- memory policy ---------------------------------------------------------------

@pytest.mark.parametrize("pol, expected", [
    ({"mode": "MPOL_DEFAULT"}, SetMemoryPolicy("MPOL_DEFAULT")),
    ({"mode": "MPOL_PREFERRED"}, SetMemoryPolicy("MPOL_PREFERRED")),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0-1,3", "flags": ["MPOL_F_STATIC_NODES"]},
     SetMemoryPolicy("MPOL_INTERLEAVE", (0, 1, 3), ("MPOL_F_STATIC_NODES",))),
    # relative nodes are positions, not node numbers: no host check
    ({"mode": "MPOL_BIND", "nodes": "7", "flags": ["MPOL_F_RELATIVE_NODES"]},
     SetMemoryPolicy("MPOL_BIND", (7,), ("MPOL_F_RELATIVE_NODES",))),
])
def test_memory_policy_step(pol, expected):
    host = FakeHost(nodes=(0, 1, 3))
    assert mine(extras_of(cfg(linux={"memoryPolicy": pol}), host)) == [expected]


@pytest.mark.parametrize("pol, path, words", [
    ({"mode": "MPOL_NOPE"}, "linux.memoryPolicy.mode", "unknown memory policy mode"),
    ({"mode": "MPOL_BIND"}, "linux.memoryPolicy", "needs at least one node"),
    ({"mode": "MPOL_LOCAL", "nodes": "0"}, "linux.memoryPolicy.nodes", "takes no nodes"),
    ({"mode": "MPOL_BIND", "nodes": "0,2"}, "linux.memoryPolicy.nodes",
     "node 2 does not exist on this host (nodes: 0-1)"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES",
                                                   "MPOL_F_RELATIVE_NODES"]},
     "linux.memoryPolicy.flags", "exclude each other"),
    ({"mode": "MPOL_BIND", "nodes": "1-0"}, "linux.memoryPolicy.nodes", "invalid node range"),
    ({"mode": "MPOL_BIND", "nodes": "a"}, "linux.memoryPolicy.nodes", "invalid node list"),
])
def test_memory_policy_refused(pol, path, words):
    e = problem(cfg(linux={"memoryPolicy": pol}), FakeHost(nodes=(0, 1)))
    assert e.path == path and words in e.message, e


def test_cpu_lists():
    assert parse_cpu_list("0-3,7", "f") == (0, 1, 2, 3, 7)
    assert parse_cpu_list(" 5, 1 ,1-2", "f") == (1, 2, 5)
    assert parse_cpu_list("", "f") == ()
    for bad in ("3-1", "x", "1-", "0-999999"):
        with pytest.raises(ConfigError):
            parse_cpu_list(bad, "f")
    assert format_list((0, 1, 2, 5, 7, 8)) == "0-2,5,7-8"


# --- exec CPU affinity ---------------------------------------------------------------

def test_affinity_around_the_cgroup_join():
    join = [JoinCgroup(("/sys/fs/cgroup/cpuset/c",))]
    assert around_cgroup_join(Process(args=("x",)), join) == join
    only_final = Process(args=("x",), exec_cpu_affinity={"initial": "", "final": "0-1"})
    assert around_cgroup_join(only_final, join) == join + [
        SetCpuAffinity((0, 1), "process.execCPUAffinity.final")]
    bad = Process(args=("x",), exec_cpu_affinity={"initial": "1-0"})
    with pytest.raises(ConfigError) as e:
        around_cgroup_join(bad, join)
    assert e.value.path == "process.execCPUAffinity.initial"


# --- what pyrunc refuses ---------------------------------------------------------

def test_apparmor_refused_with_the_reason():
    config = cfg({"apparmorProfile": "docker-default"})
    e = problem(config, FakeHost(apparmor=False))
    assert e.path == "process.apparmorProfile"
    assert e.message == ('apparmor profile "docker-default" is specified in config, but '
                         'apparmor is not enabled on this host')
    assert problem(config, FakeHost(apparmor=True)).message.endswith(
        "pyrunc does not implement apparmor")


def test_selinux_refused_with_runcs_words():
    e = problem(cfg({"selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c1,c2"}))
    assert str(e) == ("process.selinuxLabel: selinux label is specified in config, but "
                      "selinux is disabled or not supported")
    e = problem(cfg(linux={"mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0"}))
    assert e.path == "linux.mountLabel" and "selinux is disabled or not supported" in e.message
    e = problem(cfg(linux={"mountLabel": "x"}), FakeHost(selinux=True))
    assert e.message.endswith("pyrunc does not implement selinux")


def test_empty_labels_are_no_request():
    assert mine(extras_of(cfg({"apparmorProfile": "", "selinuxLabel": ""},
                              {"mountLabel": ""}))) == []


@pytest.mark.parametrize("rdt, words", [
    ({"l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=20"},
     "intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled"),
    ({"memBwSchema": "MB:0=20"},
     "intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled"),
    ({"closID": "guaranteed"}, "Intel RDT is not supported or enabled"),
    ({}, "Intel RDT is not supported or enabled"),
])
def test_intel_rdt_without_resctrl(rdt, words):
    e = problem(cfg(linux={"intelRdt": rdt}))
    assert e.path == "linux.intelRdt" and words in e.message


def test_intel_rdt_with_resctrl_is_still_refused():
    e = problem(cfg(linux={"intelRdt": {"closID": "x"}}), FakeHost(resctrl=True))
    assert "pyrunc does not implement Intel RDT" in e.message


def test_host_probe_on_this_machine():
    host = extras.Host()
    assert 0 in host.numa_nodes()
    for fact in (host.apparmor_enabled(), host.selinux_enabled(), host.resctrl_mounted()):
        assert isinstance(fact, bool)


# --- net devices ---------------------------------------------------------------------

def test_net_devices_steps_sorted_and_renamed():
    config = cfg(linux={"netDevices": {"eth1": {}, "eth0": {"name": "ceth%d"},
                                       "ens3": {"name": ""}}})
    assert net_device_steps(config) == [MoveNetDevice("ens3", "ens3"),
                                        MoveNetDevice("eth0", "ceth%d"),
                                        MoveNetDevice("eth1", "eth1")]


def test_net_devices_go_before_the_runtime_hooks():
    hook = {"path": "/bin/true"}
    config = cfg(linux={"netDevices": {"eth0": {"name": "c0"}}},
                 hooks={"prestart": [hook], "createRuntime": [hook]})
    steps = [s for s in build_plan(config, cid="c").steps if s.phase is Phase.RUNTIME_HOOKS]
    assert [type(s) for s in steps] == [MoveNetDevice, RunHooks, RunHooks]


@pytest.mark.parametrize("devices, path, words", [
    ({"eth0": {"name": "a/b"}}, "linux.netDevices.eth0.name", "contains '/'"),
    ({"eth0": {"name": "x" * 16}}, "linux.netDevices.eth0.name", "1 to 15 bytes"),
    ({"eth0": {"name": "c%d%d"}}, "linux.netDevices.eth0.name", "one '%d' template"),
    ({"bad name": {}}, 'linux.netDevices["bad name"]', "whitespace"),
    ({"eth0": {"name": "c0"}, "eth1": {"name": "c0"}}, "linux.netDevices.eth1.name",
     "would both be named"),
])
def test_net_devices_refused(devices, path, words):
    with pytest.raises(ConfigError) as e:
        net_device_steps(cfg(linux={"netDevices": devices}))
    assert e.value.path == path and words in e.value.message


def test_net_devices_need_a_network_namespace():
    config = cfg(linux={"netDevices": {"eth0": {}}, "namespaces": [{"type": "mount"}]})
    with pytest.raises(ConfigError) as e:
        build_plan(config, cid="c")
    assert e.value.path == "linux.netDevices" and "network namespace" in e.value.message


def test_interface_names():
    assert interface_name_problem("eth0") is None
    assert interface_name_problem("c%d", template_ok=True) is None
    assert interface_name_problem("c%d") is not None
    for bad in ("", ".", "..", "a:b", "a b", "x" * 16):
        assert interface_name_problem(bad) is not None


# --- features --------------------------------------------------------------------------

def test_features_say_what_is_implemented():
    linux = describe()["linux"]
    assert linux["apparmor"] == {"enabled": False} and linux["selinux"] == {"enabled": False}
    assert linux["intelRdt"]["enabled"] is False
    assert linux["netDevices"] == {"enabled": True}
    assert set(linux["memoryPolicy"]["modes"]) == set(extras.MPOL_MODES)
    assert set(linux["memoryPolicy"]["flags"]) == set(extras.MPOL_FLAGS)
