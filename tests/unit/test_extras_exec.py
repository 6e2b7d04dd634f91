"""The extras' handlers: with the recording double (arguments, errors), on the
real kernel in a throwaway process (no namespaces needed), and the wiring
(launch dispatches MoveNetDevice; pyroute2 stays out of every other path)."""
import errno
import json
import os
import subprocess
import sys

import pytest

from pyrunc.errors import RuntimeFailure
from pyrunc.executor import base, launch, netdev
from pyrunc.executor.base import Context, run_steps
from pyrunc.plan.steps import (
    MoveNetDevice, Phase, Plan, RunHooks, SetCpuAffinity, SetIOPriority, SetMemoryPolicy,
    SetPersonality, SetScheduler,
)
from tests.doubles import RecordingSys


def ctx_with(sys_=None, **extra):
    return Context(sys=sys_ or RecordingSys(), config=None, extra=dict(extra))


def run(step, **extra):
    ctx = ctx_with(**extra)
    run_steps([step], ctx)
    return ctx.sys.calls


def test_scheduler_arguments():
    step = SetScheduler("SCHED_DEADLINE", nice=0, priority=0,
                        flags=("SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN"),
                        runtime=10, deadline=20, period=30)
    assert run(step) == [("sched_setattr", (0, 6, 0x01 | 0x04, 0, 0, 10, 20, 30))]
    assert run(SetScheduler("SCHED_BATCH", nice=-3)) == [
        ("sched_setattr", (0, 3, 0, -3, 0, 0, 0, 0))]


def test_scheduler_error_names_the_field_and_explains_rt_refusal():
    ctx = ctx_with()
    ctx.sys.fail["sched_setattr"] = errno.EPERM
    with pytest.raises(RuntimeFailure) as e:
        run_steps([SetScheduler("SCHED_FIFO", priority=5)], ctx)
    text = str(e.value)
    assert text.startswith("process.scheduler: error setting scheduler SCHED_FIFO: "
                           "operation not permitted")
    assert "realtimeRuntime" in text


def test_io_priority_value():
    # IOPRIO_PRIO_VALUE(class, data) = class << 13 | data, for IOPRIO_WHO_PROCESS 0 (ourselves)
    assert run(SetIOPriority("IOPRIO_CLASS_BE", 6)) == [("ioprio_set", (1, 0, 2 << 13 | 6))]
    assert run(SetIOPriority("IOPRIO_CLASS_RT", 0)) == [("ioprio_set", (1, 0, 1 << 13))]


def test_personality_and_memory_policy():
    assert run(SetPersonality("LINUX32")) == [("personality", (0x0008,))]
    step = SetMemoryPolicy("MPOL_INTERLEAVE", (0, 2), ("MPOL_F_STATIC_NODES",))
    assert run(step) == [("set_mempolicy", (3 | 1 << 15, (0, 2)))]


def test_memory_policy_error_names_the_field():
    ctx = ctx_with()
    ctx.sys.fail["set_mempolicy"] = errno.EINVAL
    with pytest.raises(RuntimeFailure, match=r"^linux.memoryPolicy: error setting memory "
                                             r"policy MPOL_BIND nodes 0-1: invalid argument$"):
        run_steps([SetMemoryPolicy("MPOL_BIND", (0, 1))], ctx)


def test_cpu_affinity_applies_to_the_forked_child():
    calls = run(SetCpuAffinity((0, 1), "process.execCPUAffinity.final"), child_pid=4242)
    assert calls == [("sched_setaffinity", (4242, (0, 1)))]
    ctx = ctx_with(child_pid=1)
    ctx.sys.fail["sched_setaffinity"] = errno.EINVAL
    with pytest.raises(RuntimeFailure, match=r"^process.execCPUAffinity.initial: error setting "
                                             r"CPU affinity to 3: invalid argument$"):
        run_steps([SetCpuAffinity((3,), "process.execCPUAffinity.initial")], ctx)


# --- the real syscalls, in a process of its own -----------------------------------

REAL = r"""
import ctypes, json, os
from pyrunc import syscalls
from pyrunc.executor.base import Context, run_steps
from pyrunc.plan.steps import SetIOPriority, SetMemoryPolicy, SetPersonality, SetScheduler
steps = [SetMemoryPolicy("MPOL_BIND", (0,)), SetPersonality("LINUX32"),
         SetIOPriority("IOPRIO_CLASS_IDLE", 0), SetScheduler("SCHED_BATCH", nice=7)]
run_steps(steps, Context(sys=syscalls, config=None))
syscalls.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
stat = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
with open("/proc/self/numa_maps") as f:
    numa = f.readline().split()[1]
print(json.dumps({"personality": open("/proc/self/personality").read().strip(),
                  "uname": os.uname().machine, "nice": int(stat[16]), "policy": int(stat[38]),
                  "numa": numa, "cpus": sorted(os.sched_getaffinity(0)),
                  # ioprio_get(IOPRIO_WHO_PROCESS, self): 252 on x86_64
                  "ioprio": ctypes.CDLL(None).syscall(252, 1, 0)}))
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="ioprio_get number is x86_64's")
def test_handlers_on_the_real_kernel():
    if not os.path.exists("/proc/self/numa_maps"):
        pytest.skip("kernel without NUMA: no numa_maps")
    out = subprocess.run([sys.executable, "-c", REAL], capture_output=True, text=True,
                         check=True).stdout
    got = json.loads(out)
    assert got["personality"] == "00000008" and got["uname"] in ("i686", "i386")
    assert got["nice"] == 7 and got["policy"] == 3            # SCHED_BATCH
    assert got["numa"] == "bind:0"
    assert got["ioprio"] == 3 << 13                           # idle class
    assert got["cpus"] == [min(os.sched_getaffinity(0))]


# --- wiring ------------------------------------------------------------------------

class FakeChannel:
    def __init__(self, messages):
        self.messages = list(messages)
        self.sent = []

    def recv(self):
        return self.messages.pop(0) if self.messages else None

    def send(self, kind, **kw):
        self.sent.append(kind)


def test_launch_runs_move_net_device_between_rootfs_and_the_hooks(monkeypatch):
    seen = []
    monkeypatch.setitem(base._HANDLERS, MoveNetDevice,
                        lambda step, ctx: seen.append(("move", step.host_name,
                                                       ctx.extra["init_pid"])))
    monkeypatch.setattr(launch, "run_hooks", lambda stage, hooks, state: seen.append(stage))
    plan = Plan((MoveNetDevice("eth0", "c0"),
                 RunHooks("prestart", (), Phase.RUNTIME_HOOKS)))
    chan = FakeChannel([{"t": "pid", "pid": 77}, {"t": "rootfs-done"}, {"t": "ready"}])
    ctx = ctx_with()
    assert launch._drive(chan, plan, 70, None, lambda pid: {"pid": pid}, ctx) == 77
    assert seen == [("move", "eth0", 77), "prestart"]
    assert chan.sent == ["ok"]


def test_pyroute2_is_imported_only_when_a_device_moves():
    code = ("import sys, json\n"
            "from pyrunc.executor import base\n"
            "for name in set(base._MODULE_OF.values()):\n"
            "    __import__('pyrunc.executor.' + name)\n"
            "from pyrunc.plan.build import build_plan\n"
            "from pyrunc.commands.features import describe\n"
            "describe()\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('pyroute2'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


class Msg(dict):
    """Enough of a pyroute2 ifaddrmsg for _address."""

    def __init__(self, attrs, **fields):
        super().__init__(fields)
        self.attrs = attrs

    def get_attr(self, name):
        return self.attrs.get(name)


def test_only_permanent_global_addresses_are_carried():
    v4 = Msg({"IFA_ADDRESS": "10.1.2.3", "IFA_LOCAL": "10.1.2.3", "IFA_BROADCAST": "10.1.2.255",
              "IFA_FLAGS": 0x80}, family=2, prefixlen=24, scope=0, flags=0x80)
    v6 = Msg({"IFA_ADDRESS": "fd00::1", "IFA_FLAGS": 0x80 | 0x02 | 0x40},
             family=10, prefixlen=64, scope=0, flags=0xc2)
    host_scope = Msg({"IFA_ADDRESS": "10.9.9.9", "IFA_FLAGS": 0x80}, family=2, prefixlen=32,
                     scope=254, flags=0x80)
    dynamic = Msg({"IFA_ADDRESS": "fd00::2", "IFA_FLAGS": 0x00}, family=10, prefixlen=64,
                  scope=0, flags=0)
    link_local = Msg({"IFA_ADDRESS": "fe80::1", "IFA_FLAGS": 0x80}, family=10, prefixlen=64,
                     scope=253, flags=0x80)
    assert netdev._address(v4) == {"family": 2, "prefixlen": 24, "address": "10.1.2.3",
                                   "local": "10.1.2.3", "broadcast": "10.1.2.255"}
    # nodad is kept, tentative (0x40) is the kernel's to set
    assert netdev._address(v6) == {"family": 10, "prefixlen": 64, "address": "fd00::1",
                                   "IFA_FLAGS": 0x02}
    for msg in (host_scope, dynamic, link_local):
        assert netdev._address(msg) is None
