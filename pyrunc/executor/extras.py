"""Handlers for the extras (pyrunc.plan.extras): scheduler, I/O priority,
personality and memory policy in the init (or an exec'd process) before the
identity switch, and the exec CPU affinity from pyrunc exec.

Every call goes through ctx.sys; errors name the config field they come from.
MoveNetDevice's handler is in netdev.py, imported here so that loading this
module registers it (pyroute2 itself is imported only when it runs).
"""
import errno

from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor import netdev  # noqa: F401 - registers MoveNetDevice
from pyrunc.executor.base import handles
from pyrunc.plan.extras import (
    IOPRIO_CLASS_SHIFT, IOPRIO_CLASSES, IOPRIO_WHO_PROCESS, MPOL_FLAGS, MPOL_MODES,
    PERSONALITY_DOMAINS, SCHED_FLAGS, SCHED_POLICIES, format_list,
)
from pyrunc.plan.steps import (
    SetCpuAffinity, SetIOPriority, SetMemoryPolicy, SetPersonality, SetScheduler,
)


def _mask(names, table):
    bits = 0
    for n in names:
        bits |= table[n]
    return bits


@handles(SetScheduler)
def set_scheduler(step, ctx):
    try:
        ctx.sys.sched_setattr(0, SCHED_POLICIES[step.policy], _mask(step.flags, SCHED_FLAGS),
                              step.nice, step.priority, step.runtime, step.deadline, step.period)
    except OSError as e:
        hint = ""
        if e.errno == errno.EPERM and step.policy in ("SCHED_FIFO", "SCHED_RR"):
            # cgroup v1 with RT group scheduling gives a new cpu cgroup no RT time
            hint = (" (a real-time policy needs RT time in the container's cpu cgroup: "
                    "linux.resources.cpu.realtimeRuntime)")
        elif e.errno in (errno.EPERM, errno.EBUSY) and step.policy == "SCHED_DEADLINE":
            hint = (" (SCHED_DEADLINE needs every CPU of the root domain in the affinity "
                    "and free deadline bandwidth)")
        raise RuntimeFailure(f"process.scheduler: error setting scheduler {step.policy}: "
                             f"{oserror_text(e)}{hint}") from None


@handles(SetIOPriority)
def set_io_priority(step, ctx):
    value = IOPRIO_CLASSES[step.io_class] << IOPRIO_CLASS_SHIFT | step.priority
    try:
        ctx.sys.ioprio_set(IOPRIO_WHO_PROCESS, 0, value)
    except OSError as e:
        raise RuntimeFailure(f"process.ioPriority: error setting I/O priority {step.io_class} "
                             f"{step.priority}: {oserror_text(e)}") from None


@handles(SetPersonality)
def set_personality(step, ctx):
    try:
        ctx.sys.personality(PERSONALITY_DOMAINS[step.domain])
    except OSError as e:
        raise RuntimeFailure(f"linux.personality: error setting personality {step.domain}: "
                             f"{oserror_text(e)}") from None


@handles(SetMemoryPolicy)
def set_memory_policy(step, ctx):
    mode = MPOL_MODES[step.mode] | _mask(step.flags, MPOL_FLAGS)
    try:
        ctx.sys.set_mempolicy(mode, step.nodes)
    except OSError as e:
        nodes = f" nodes {format_list(step.nodes)}" if step.nodes else ""
        raise RuntimeFailure(f"linux.memoryPolicy: error setting memory policy {step.mode}"
                             f"{nodes}: {oserror_text(e)}") from None


@handles(SetCpuAffinity)
def set_cpu_affinity(step, ctx):
    try:
        ctx.sys.sched_setaffinity(ctx.extra["child_pid"], step.cpus)
    except OSError as e:
        raise RuntimeFailure(f"{step.field}: error setting CPU affinity to "
                             f"{format_list(step.cpus)}: {oserror_text(e)}") from None
