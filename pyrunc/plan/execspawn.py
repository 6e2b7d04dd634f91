"""An `exec` plan shaped for pyrunc-init's spawn mode (executor/waiter.py).

The process `pyrunc exec` forks joins the container's namespaces and makes
every setting of the new process (they pass through fork and execve), then
execs pyrunc-init, which forks the program into the container's pid
namespace.  No process there is ever the host's interpreter (CVE-2019-5736):
the fork into it happens after the exec of pyrunc-init.  Hence:

- no ForkInit: pyrunc-init's fork takes its place;
- Exec becomes ExecSpawn;
- the terminal's session is the program's (SetupConsole leaves it);
- cgroups: the runtime forks its child straight into the v2 cgroup
  (BornInCgroup), the child joins the v1 ones itself (EnterCgroups) -- a move
  from outside would wait for the kernel (see EnterCgroups); with
  execCPUAffinity the runtime joins it (JoinCgroup between the two settings);
- process.oomScoreAdj and, in a user namespace, the setgroups check go
  through the host's /proc, opened before the setns into the container's
  mount namespace (whose /proc does not show us).

Not with a seccomp listener (SCMP_ACT_NOTIFY): the agent is told the pid of
the process that loads the filter, which must then be the program's own.

ExecSpawn.vfork (may_vfork): like create's init (plan/cloneinit.py), the
child may run in the runtime's memory until it execs pyrunc-init, when it
never waits for the runtime: its cgroups are the v2 one it is born in and
the v1 ones it joins itself, nothing in the CGROUPS phase but BornInCgroup
(the runtime would move it, or pin its CPUs, while it waits for "go").
"""
from pyrunc.plan.cloneinit import waits_for_runtime
from pyrunc.plan.steps import (BornInCgroup, ConnectSeccompListener, EnterCgroups, Exec, ExecSpawn,
                               ForkInit, JoinCgroup, JoinNamespace, OpenEarly, Phase,
                               SetCpuAffinity, SetOomScoreAdj, SetupConsole)
from pyrunc.record import replace


def shape_for_spawn(steps, v2_mount, terminal):
    if any(isinstance(s, ConnectSeccompListener) for s in steps):
        # the agent must hear from the process that loaded the filter, and it
        # is the program's: the Python process forked into the container loads it
        return list(steps)
    out = [s for s in steps if not isinstance(s, ForkInit)]
    early = []
    join = next((s for s in out if isinstance(s, JoinCgroup)), None)
    if join is not None and not any(isinstance(s, SetCpuAffinity) for s in out):
        prefix = v2_mount.rstrip("/") + "/" if v2_mount else None
        v2 = [d for d in join.dirs if prefix and (d + "/").startswith(prefix)]
        v1 = tuple(d for d in join.dirs if d not in v2)
        at = out.index(join)
        out[at:at + 1] = [BornInCgroup(v2[0])] if v2 else []
        if v1:
            early.append(EnterCgroups(v1, ""))
    if any(isinstance(s, SetOomScoreAdj) or (isinstance(s, JoinNamespace) and s.ns_type == "user")
           for s in out):
        early.append(OpenEarly("/proc"))   # oomScoreAdj; SetUser reads self/setgroups
    first = next((i for i, s in enumerate(out) if s.phase is Phase.NAMESPACES), len(out))
    out[first:first] = early
    for i, s in enumerate(out):
        if isinstance(s, SetupConsole):
            out[i] = replace(s, take_ctty=False)
        elif isinstance(s, Exec):
            out[i] = ExecSpawn(s.args, s.env, bool(terminal))
    if may_vfork(out):
        at = max(i for i, s in enumerate(out) if isinstance(s, ExecSpawn))
        out[at] = replace(out[at], vfork=True)
    return out


def may_vfork(steps):
    """Whether a spawn-shaped exec plan's child may be vfork'd (see the module doc)."""
    start = [s for s in steps if s.phase is Phase.START]
    return (bool(start) and isinstance(start[-1], ExecSpawn) and not waits_for_runtime(steps)
            and all(isinstance(s, BornInCgroup) for s in steps if s.phase is Phase.CGROUPS))
