"""config -> Plan: the whole ordered list of steps for one container.

This is the one place that decides what happens in which order; the pieces
(namespaces, rootfs, process) each know their own part.
"""
from pyrunc.plan.namespaces import creates, plan_namespaces
from pyrunc.plan.steps import (AwaitStart, ExecAwaitingStart, JoinSessionKeyring, Phase, Plan,
                               ReopenDevNull, RunHooks)


def build_plan(config, *, cid="", no_pivot=False, no_new_keyring=False, preserve_fds=0,
               systemd_cgroup=False, init_after_start=False, rootless=None, start_now=False):
    """init_after_start: keep the Python init until after `start` even without
    startContainer hooks (fault rules that act at its steps during start).
    rootless: the global --rootless (None: detect; see plan/cgroups.py).
    start_now: `run`'s create, whose init execs the program without waiting
    for a start (unless it must stay for startContainer hooks)."""
    from pyrunc.plan.process import plan_process
    from pyrunc.plan.rootfs import plan_rootfs

    from pyrunc.plan.cgroups import plan_cgroups
    userns = config.linux.namespace("user") is not None
    steps = plan_cgroups(config, cid, systemd=systemd_cgroup, rootless=rootless)
    steps += plan_namespaces(config)
    rootfs_steps, pivot_steps = plan_rootfs(config, no_pivot=no_pivot, userns=userns,
                                            terminal=bool(config.process and config.process.terminal))
    steps += rootfs_steps
    extras = _has_extras(config)
    if config.linux.net_devices or extras:
        # only then: plan.extras and the executor's extras cost ~0.3 ms a create
        from pyrunc.plan.extras import add_extras, net_device_steps
        steps += net_device_steps(config)   # by pyrunc create, before prestart/createRuntime
    hooks = config.hooks
    # prestart (deprecated) runs at the same moment as createRuntime, before it
    for stage in ("prestart", "createRuntime"):
        if hooks[stage]:
            steps.append(RunHooks(stage, hooks[stage], Phase.RUNTIME_HOOKS))
    if hooks["createContainer"]:
        steps.append(RunHooks("createContainer", hooks["createContainer"], Phase.CONTAINER))
    if not no_new_keyring:
        steps.append(JoinSessionKeyring("_ses." + cid))
    container_steps, start_steps = plan_process(config, preserve_fds=preserve_fds, userns=userns)
    if extras:
        container_steps = add_extras(config, container_steps)   # before the identity switch
    steps += sorted(pivot_steps + [ReopenDevNull()] + container_steps, key=_container_rank)
    if hooks["startContainer"] or init_after_start:
        # the hooks run in the init after start: it must stay ours until then
        steps.append(AwaitStart())
        if hooks["startContainer"]:
            steps.append(RunHooks("startContainer", hooks["startContainer"], Phase.START))
        steps += start_steps
    elif start_now:
        # `run`: nothing may come between its create and its start, so the
        # init execs the program at once: no exec fifo, no pyrunc-init waiting
        steps += start_steps
    else:
        *last_settings, program = start_steps
        steps += last_settings + [ExecAwaitingStart(program.args, program.env)]
    if hooks["poststart"]:
        steps.append(RunHooks("poststart", hooks["poststart"], Phase.POSTSTART))
    if hooks["poststop"]:
        steps.append(RunHooks("poststop", hooks["poststop"], Phase.POSTSTOP))
    if config.linux.seccomp:   # add_seccomp's own test; the module costs ~0.15 ms
        from pyrunc.plan.seccomp import add_seccomp
        steps = add_seccomp(config, steps)
    from pyrunc.cgroups.host import probe
    from pyrunc.plan.cgroups import enter_from_child
    from pyrunc.plan.cloneinit import clone_from_runtime
    return Plan(tuple(clone_from_runtime(enter_from_child(steps, probe().v2_mount))))


# The members plan.extras.add_extras acts on or refuses (process.*, linux.*):
# without any of them it changes nothing, and plan.extras is not imported.
# tests/unit/test_lazy_handlers.py checks that it reads no other member.
EXTRAS_PROCESS = ("apparmor_profile", "selinux_label", "io_priority", "scheduler")
EXTRAS_LINUX = ("mount_label", "intel_rdt", "memory_policy", "personality")


def _has_extras(config):
    proc = config.process
    return (any(getattr(config.linux, n) not in (None, "") for n in EXTRAS_LINUX)
            or (proc is not None
                and any(getattr(proc, n) not in (None, "") for n in EXTRAS_PROCESS)))


# Inside the container phase: sysctls before readonlyPaths make /proc/sys
# read-only; process attributes (user, caps) last since they drop privilege.
_RANK = {"JoinSessionKeyring": 0, "PivotRoot": 0, "MoveRoot": 0, "ReopenDevNull": 1, "BringUpLoopback": 1, "SetHostname": 1,
         "SetDomainname": 1, "WriteSysctl": 1, "RemountRootReadonly": 2, "ReadonlyPath": 3,
         "MaskPath": 3}


def _container_rank(step):
    return _RANK.get(type(step).__name__, 4)


__all__ = ["build_plan", "creates"]
