"""Fork the init from `pyrunc create` itself: no intermediate process.

A new pid namespace applies to children only, so the classic shape is a
child that joins the cgroups, unshares the namespaces and forks the init
(EnterCgroups, CreateNamespaces, ForkInit), then exits.  clone3() can do all
of that at once from the runtime: the init is born in its new namespaces and
in the cgroup2 directory, and only has to write "0" to its v1 `tasks` files.
That saves a Python fork, a process exit and two sync messages on every
create (~1 ms, and the CPU of a whole process under load).

It needs the cgroups made before the fork (launch runs the CGROUPS phase
first for it) and nothing that must happen between the unshare and the fork:
no joined namespace (setns into a pid or user namespace applies to children
too, the others are joined in order), no user namespace (the id maps are
written while the child waits, before the rest is created inside it), no
time namespace (its offsets must be written before a process lives in it).
Those plans keep the classic shape.  `legacy` turns a cloned plan back into
it, for kernels without clone3 (launch falls back at run time).

CloneInit.vfork: the init may run in the runtime's memory, the runtime
asleep, until it execs (pyrunc/clone_vm.c): no page is copied for it.  That
holds when it never waits for the runtime (no answer after its mounts, see
waits_for_runtime) nor for a start in Python (AwaitStart), and its last step
is an exec: the program (`run`) or pyrunc-init (ExecAwaitingStart).
"""
from pyrunc.plan.steps import (AwaitStart, CloneInit, ConnectSeccompListener, CreateNamespaces,
                               CreateUserNamespace, EnterCgroups, Exec, ExecAwaitingStart,
                               ForkInit, JoinCgroup, JoinNamespace, OpenEarly, Phase, RunHooks,
                               SetTimeOffsets)

_BLOCKERS = (JoinCgroup, JoinNamespace, CreateUserNamespace, SetTimeOffsets, OpenEarly)


def clone_from_runtime(steps):
    """steps with EnterCgroups + CreateNamespaces + ForkInit replaced by
    CloneInit, EnterCgroups (v1 only) and, when there is one, the new cgroup
    namespace: made by the init once it is in all its cgroups (its root is
    the cgroup its maker is in)."""
    steps = list(steps)
    if not any(isinstance(s, ForkInit) for s in steps) or any(isinstance(s, _BLOCKERS)
                                                             for s in steps):
        return steps
    creates = [s for s in steps if isinstance(s, CreateNamespaces)]
    ns_types = tuple(t for s in creates for t in s.ns_types)
    if "time" in ns_types or "pid" not in ns_types:
        return steps
    enter = next((s for s in steps if isinstance(s, EnterCgroups)), None)
    head = [CloneInit(tuple(t for t in ns_types if t != "cgroup"), enter.v2_dir if enter else "",
                      _may_vfork(steps))]
    if enter is not None and enter.v1_dirs:
        head.append(EnterCgroups(enter.v1_dirs, ""))
    if "cgroup" in ns_types:
        head.append(CreateNamespaces(("cgroup",)))
    out = []
    for s in steps:
        if isinstance(s, (EnterCgroups, CreateNamespaces, ForkInit)):
            if isinstance(s, ForkInit):
                out += head
            continue
        out.append(s)
    return out


def waits_for_runtime(steps):
    """Whether the init, its mounts made, waits for `pyrunc create` to answer:
    the runtime's hooks (and MoveNetDevice) run then, and the answer brings the
    state JSON that the init's own hooks and a seccomp agent get.  Without
    any of them the init goes straight on (both sides ask this of the plan)."""
    return any(s.phase is Phase.RUNTIME_HOOKS
               or (isinstance(s, RunHooks) and s.phase in (Phase.CONTAINER, Phase.START))
               or isinstance(s, ConnectSeccompListener) for s in steps)


def _may_vfork(steps):
    start = [s for s in steps if s.phase is Phase.START]
    return (not waits_for_runtime(steps) and not any(isinstance(s, AwaitStart) for s in steps)
            and bool(start) and isinstance(start[-1], (Exec, ExecAwaitingStart)))


def legacy(steps):
    """The classic shape of a clone_from_runtime plan (see the module doc)."""
    steps = list(steps)
    clone = next((s for s in steps if isinstance(s, CloneInit)), None)
    if clone is None:
        return steps
    v1 = next((s.v1_dirs for s in steps if isinstance(s, EnterCgroups)), ())
    cgroupns = any(isinstance(s, CreateNamespaces) and s.ns_types == ("cgroup",) for s in steps)
    head = []
    if v1 or clone.v2_dir:
        head.append(EnterCgroups(v1, clone.v2_dir))
    head += [CreateNamespaces(clone.ns_types), ForkInit()]
    if cgroupns:
        head.append(CreateNamespaces(("cgroup",)))
    out = []
    for s in steps:
        if s is clone:
            out += head
        elif not isinstance(s, (EnterCgroups, CreateNamespaces)):
            out.append(s)
    return out
