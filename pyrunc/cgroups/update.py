"""`pyrunc update`: a LinuxResources dict applied to a running container.

The same planner as create (update=True: zero/absent fields are left alone,
devices only when given, memory and cpu.max read the current values they
need) and the same step handlers, fed the container's saved directories.
"""
import os

from pyrunc.cgroups.host import hugepage_size_name


def _hugepage_sizes():
    try:
        return tuple(hugepage_size_name(n) for n in os.listdir("/sys/kernel/mm/hugepages")
                     if n.startswith("hugepages-"))
    except OSError:
        return ()


def plan(manager, resources):
    from pyrunc.plan.resources import Target, plan_resources
    controllers = ()
    if manager.v2:
        try:
            with open(os.path.join(manager.path("unified"), "cgroup.controllers")) as f:
                controllers = tuple(f.read().split())
        except OSError:
            pass
    target = Target(dirs=manager.paths, v2=manager.v2, v2_controllers=controllers,
                    hugepage_sizes=_hugepage_sizes(), update=True)
    return plan_resources(resources, target)


def apply(manager, resources, sys=None):
    from pyrunc.executor import cgroups as _handlers  # noqa: F401  (registers the handlers)
    from pyrunc.executor.base import Context, run_steps
    if sys is None:
        import pyrunc.syscalls as sys
    run_steps(plan(manager, resources), Context(sys=sys, config=None))
