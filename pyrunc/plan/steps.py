"""The typed steps a plan is made of.

A plan is an ordered tuple of these.  Each step names the phase it belongs to:
the phase says which process carries it out and when (see Phase).  Steps are
plain data: no step does anything by itself; pyrunc.executor does.
"""
from pyrunc.record import Enum, Record, asdict, fields


class Phase(Enum):
    # in pyrunc create, right after fork, before the child may go on: cgroups
    CGROUPS = "cgroups"
    # in the forked child, before the init exists: setns/unshare
    NAMESPACES = "namespaces"
    # in the init, mount namespace ready, before pivot_root
    ROOTFS = "rootfs"
    # in pyrunc create (the runtime namespace), after ROOTFS: prestart, createRuntime hooks
    RUNTIME_HOOKS = "runtime-hooks"
    # in the init: createContainer hooks, pivot_root, paths, sysctl, process attributes
    CONTAINER = "container"
    # in the init after `start` released it: startContainer hooks, last settings, execve
    START = "start"
    # in pyrunc start, after the user process runs
    POSTSTART = "poststart"
    # in pyrunc delete, after the container is gone
    POSTSTOP = "poststop"


class Step(Record):
    phase = None  # class attribute set by each subclass

    def describe(self):
        """One readable line for `pyrunc plan`: mount flags by name, defaults left out."""
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v == f.default and f.default is not None:
                continue
            if f.name.endswith("flags") and isinstance(v, int):
                parts.append(f"{f.name}={_flag_names(v)}")
            elif f.name == "propagation" and isinstance(v, tuple):
                parts.append(f"{f.name}=({', '.join(_flag_names(x) for x in v)})")
            else:
                parts.append(f"{f.name}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def to_dict(self):
        d = {"step": type(self).__name__, "phase": self.phase.value}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d


def _flag_names(value):
    """MS_* bits as 'MS_BIND|MS_REC' (the numbers alone tell a reader nothing)."""
    from pyrunc.plan import mountopts
    names = [n for n in dir(mountopts) if n.startswith("MS_")]
    out, rest = [], value
    for n in sorted(names, key=lambda n: getattr(mountopts, n)):
        bit = getattr(mountopts, n)
        if bit and value & bit == bit and rest & bit:
            out.append(n)
            rest &= ~bit
    if rest:
        out.append(hex(rest))
    return "|".join(out) or "0"


def _step(phase):
    def wrap(cls):
        cls.phase = phase   # a class attribute, not a field
        return cls
    return wrap


# --- cgroups (pyrunc create, right after fork; pyrunc update) ----------------
# Planned by pyrunc.plan.cgroups, carried out by pyrunc.executor.cgroups.
# `field` on a write is the config path it comes from, for error messages.

@_step(Phase.CGROUPS)
class BornInCgroup(Step):
    """`exec`: the runtime forks its child straight into this cgroup2 directory
    (clone3 CLONE_INTO_CGROUP, launch.py): no move, no kernel wait for one.
    The handler moves it there (cgroup.procs) only where that fork failed."""
    dir: str


@_step(Phase.CGROUPS)
class CreateCgroup(Step):
    """mkdir each missing level of `dir` below `base` (an existing cgroup).

    Levels it makes are appended to ctx.extra["cgroup_created"], so that
    destroy removes exactly those.  cpuset: a new v1 cpuset cgroup has no
    cpus or mems and could hold no task, so each new level gets its parent's.
    An existing `dir` that already holds processes is refused.
    """
    dir: str
    base: str
    keys: tuple           # what state.json calls it: ("cpu", "cpuacct"), ("name=systemd",), ("unified",)
    cpuset: bool = False


@_step(Phase.CGROUPS)
class EnableControllers(Step):
    """cgroup v2: enable every controller `dir` has for its children (cgroup.subtree_control)."""
    dir: str


@_step(Phase.CGROUPS)
class WriteCgroupFile(Step):
    """Write `value` to dir/file in one write(2).

    fallback: ((file, value), ...) tried in order when `file` does not exist
    (io.bfq.weight -> io.weight); optional: a missing file is no error.
    """
    dir: str
    file: str
    value: str
    field: str
    fallback: tuple = ()
    optional: bool = False


@_step(Phase.CGROUPS)
class SetMemoryLimits(Step):
    """memory limit and memory+swap limit (bytes; 0 = leave as is, -1 = unlimited).

    Their order depends on the current limit (v1 wants memsw >= limit at
    every moment); on v2 memory.swap.max is swap - limit, and the current
    limit stands in for one not given.  check_before_update refuses a limit
    below the current usage.
    """
    dir: str
    v2: bool
    limit: int = 0
    swap: int = 0
    check_before_update: bool = False


@_step(Phase.CGROUPS)
class SetCpuMax(Step):
    """cgroup v2 cpu.max ("quota period"); 0 keeps the current value of that half."""
    dir: str
    quota: int = 0
    period: int = 0


@_step(Phase.CGROUPS)
class SetDevicesV1(Step):
    """v1 devices cgroup to (default_allow, rules): from the current devices.list,
    only the differences when both deny by default, else a reset and every rule."""
    dir: str
    default_allow: bool
    rules: tuple          # exception rule strings, "c 1:3 rwm"


@_step(Phase.CGROUPS)
class LoadDeviceFilter(Step):
    """cgroup v2: an eBPF device program for (default_allow, rules), attached to dir
    in place of any device program attached there before."""
    dir: str
    default_allow: bool
    rules: tuple


@_step(Phase.CGROUPS)
class JoinCgroup(Step):
    """Write ctx.extra["child_pid"] into each dir's cgroup.procs."""
    dirs: tuple


# --- namespaces (child) ------------------------------------------------------

@_step(Phase.NAMESPACES)
class EnterCgroups(Step):
    """The child's own way into its cgroups, instead of JoinCgroup (plan/cgroups.py
    enter_from_child): it writes "0" to each v1 dir's `tasks` (a thread moving
    itself skips the kernel's global lock and its RCU wait) and opens v2_dir,
    where ForkInit has the init born (clone3 CLONE_INTO_CGROUP)."""
    v1_dirs: tuple
    v2_dir: str


@_step(Phase.NAMESPACES)
class OpenEarly(Step):
    """Open path now, while it is the host's: a later step (JoinNamespace,
    SetOomScoreAdj on "/proc") uses the fd when, after the setns into the
    container's mount namespace, the path would be the container's."""
    path: str


@_step(Phase.NAMESPACES)
class JoinNamespace(Step):
    ns_type: str          # OCI name: "pid", "network", ...
    path: str


@_step(Phase.NAMESPACES)
class CreateUserNamespace(Step):
    """unshare(CLONE_NEWUSER); the parent then writes the maps below."""
    uid_mappings: tuple   # of IdMapping
    gid_mappings: tuple


@_step(Phase.NAMESPACES)
class CreateNamespaces(Step):
    ns_types: tuple       # OCI names, one unshare() for all of them


@_step(Phase.NAMESPACES)
class ForkInit(Step):
    """A new or joined pid namespace only applies to children: fork the init (pid 1)."""


@_step(Phase.NAMESPACES)
class CloneInit(Step):
    """`pyrunc create` itself forks the init, after its CGROUPS steps, with one
    clone3(): born in the new namespaces ns_types and in the cgroup2 dir v2_dir
    (when not ""), so no intermediate process is needed (plan/cloneinit.py).
    In the init it comes first and only says that it is the init.
    vfork: the init runs in the runtime's memory until it execs, the runtime
    asleep meanwhile (CLONE_VM | CLONE_VFORK, plan/cloneinit.py)."""
    ns_types: tuple
    v2_dir: str
    vfork: bool = False


@_step(Phase.NAMESPACES)
class SetTimeOffsets(Step):
    offsets: tuple        # (("monotonic", secs, nanosecs), ("boottime", secs, nanosecs))


@_step(Phase.NAMESPACES)
class ConnectSeccompListener(Step):
    """Connect to linux.seccomp.listenerPath (a host path) first thing, before
    namespaces and pivot_root hide it; LoadSeccomp sends the notify fd on it."""
    path: str


# --- rootfs (init, before pivot) ---------------------------------------------

@_step(Phase.ROOTFS)
class SetRootPropagation(Step):
    """Make / (our copy of the host tree) non-shared before mounting anything."""
    flags: int            # MS_SLAVE|MS_REC unless rootfsPropagation says otherwise


@_step(Phase.ROOTFS)
class BindRootfs(Step):
    """Bind the rootfs onto itself (pivot_root needs a mount point); sets ctx.root_fd."""
    path: str


@_step(Phase.ROOTFS)
class MountFs(Step):
    """One entry of config.mounts, resolved.

    destination is inside the rootfs (container path); it is resolved in-root
    through fds at execution time, never by string joining.  A bind mount is
    one whose flags carry MS_BIND; whether its target is a file or a directory
    follows the source's type at execution time.
    """
    destination: str
    source: str | None
    fstype: str | None
    flags: int            # MS_* for the mount(2) call (MS_BIND|MS_REC for rbind, ...)
    data: str             # fs-specific options left after flag parsing
    propagation: tuple    # MS_* propagation flags applied after mounting, in order
    remount_flags: int    # for bind mounts: flags needing MS_REMOUNT|MS_BIND (ro, nosuid, ...)
    cleared_flags: int = 0    # flags the options turn off (rw, dev, ...): never kept from a locked source
    attr_set: int = 0         # MOUNT_ATTR_* from rro/rnosuid/... via mount_setattr(AT_RECURSIVE)
    attr_clr: int = 0
    copyup: bool = False      # tmpcopyup: the new tmpfs starts with the directory's old contents


@_step(Phase.ROOTFS)
class MountCgroup(Step):
    """A `type: cgroup` mount: the host's v1 hierarchies or the v2 tree, seen from the container."""
    destination: str
    flags: int            # MS_* from the options (MS_RDONLY is decided by `readonly`)
    propagation: tuple
    readonly: bool        # read-only unless the options say rw (CVE-2023-25809)
    cgroupns: bool        # the container has its own cgroup namespace: mount cgroupfs, not binds


@_step(Phase.ROOTFS)
class MakeDevice(Step):
    path: str
    type: str             # "c", "b", "p"
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int
    bind_from_host: bool  # in a user namespace mknod is refused: bind the host node


@_step(Phase.ROOTFS)
class MakeSymlink(Step):
    target: str
    link: str             # container path
    replace: bool = False  # remove whatever is at `link` first (/dev/ptmx)


@_step(Phase.ROOTFS)
class SetupConsole(Step):
    """Make a pty from the container's devpts, send the master to the console socket.

    The slave becomes stdio and, with bind_console, is mounted on /dev/console
    (the container's init; a process joining it with `exec` leaves that alone).
    """
    console_size: tuple | None
    bind_console: bool = True
    # False for an exec spawned by pyrunc-init: the session (and so the
    # controlling terminal) must be the program's, made after the waiter's fork
    take_ctty: bool = True


# --- runtime hooks (pyrunc create) -------------------------------------------

class RunHooks(Step):
    stage: str            # "prestart", "createRuntime", ...
    hooks: tuple          # of config.Hook
    phase: Phase = Phase.RUNTIME_HOOKS

    def describe(self):
        return f"RunHooks({self.stage}: " + ", ".join(h.path for h in self.hooks) + ")"

    def to_dict(self):
        return {"step": "RunHooks", "phase": self.phase.value, "stage": self.stage,
                "hooks": [{"path": h.path, "args": list(h.args), "env": list(h.env),
                           "timeout": h.timeout} for h in self.hooks]}


# --- container (init) --------------------------------------------------------

@_step(Phase.CONTAINER)
class JoinSessionKeyring(Step):
    """A fresh session keyring, so the container cannot see the caller's keys."""
    name: str


@_step(Phase.CONTAINER)
class ReopenDevNull(Step):
    """stdio that is the host's /dev/null (often read-only) becomes the container's own."""


@_step(Phase.CONTAINER)
class PivotRoot(Step):
    """pivot_root into the rootfs, detach the old root, then finish the mounts.

    After jailing: `propagation` (MS_SHARED/MS_UNBINDABLE from rootfsPropagation)
    is applied to the new /, and each (destination, flags) in `readonly_mounts`
    (tmpfs and /dev mounts asked ro, mounted rw so they could be filled) is
    remounted read-only.
    """
    rootfs: str
    propagation: int = 0
    readonly_mounts: tuple = ()


@_step(Phase.CONTAINER)
class MoveRoot(Step):
    """--no-pivot: MS_MOVE the rootfs onto / and chroot; then as PivotRoot."""
    rootfs: str
    propagation: int = 0
    readonly_mounts: tuple = ()


@_step(Phase.CONTAINER)
class MaskPath(Step):
    path: str


@_step(Phase.CONTAINER)
class ReadonlyPath(Step):
    path: str


@_step(Phase.CONTAINER)
class WriteSysctl(Step):
    key: str
    value: str


@_step(Phase.CONTAINER)
class SetHostname(Step):
    name: str


@_step(Phase.CONTAINER)
class SetDomainname(Step):
    name: str


@_step(Phase.CONTAINER)
class BringUpLoopback(Step):
    pass


@_step(Phase.CONTAINER)
class RemountRootReadonly(Step):
    pass


@_step(Phase.CONTAINER)
class SetOomScoreAdj(Step):
    value: int


@_step(Phase.CONTAINER)
class SetRlimit(Step):
    type: str             # "RLIMIT_NOFILE"
    soft: int
    hard: int


# --- scheduling, I/O priority, personality, NUMA, exec affinity, net devices --
# Planned by pyrunc.plan.extras, carried out by pyrunc.executor.extras (and
# executor.netdev).  Names are the config's ("SCHED_FIFO"); the executor maps
# them to the kernel's numbers through plan.extras' tables.  The CONTAINER
# ones come before the identity switch: RT policies, negative nice and the RT
# I/O class need CAP_SYS_NICE/CAP_SYS_ADMIN, which SetUser gives up.

@_step(Phase.CONTAINER)
class SetMemoryPolicy(Step):
    """set_mempolicy(2): inherited by the program through execve."""
    mode: str             # "MPOL_BIND"
    nodes: tuple = ()     # node numbers
    flags: tuple = ()     # ("MPOL_F_STATIC_NODES",)


@_step(Phase.CONTAINER)
class SetPersonality(Step):
    domain: str           # "LINUX" or "LINUX32"


@_step(Phase.CONTAINER)
class SetIOPriority(Step):
    """ioprio_set(2) on this process; children inherit it."""
    io_class: str         # "IOPRIO_CLASS_BE"
    priority: int = 0


@_step(Phase.CONTAINER)
class SetScheduler(Step):
    """sched_setattr(2) on this process, with runtime-spec's defaults (0) filled in."""
    policy: str           # "SCHED_OTHER", ...
    nice: int = 0
    priority: int = 0
    flags: tuple = ()     # ("SCHED_FLAG_RESET_ON_FORK",)
    runtime: int = 0
    deadline: int = 0
    period: int = 0


@_step(Phase.CGROUPS)
class SetCpuAffinity(Step):
    """`exec`: sched_setaffinity(2) on ctx.extra["child_pid"], from pyrunc exec.

    process.execCPUAffinity: `initial` before JoinCgroup, `final` after it
    (joining a cpuset cgroup resets the affinity, which is why there are two).
    """
    cpus: tuple
    field: str            # "process.execCPUAffinity.initial", for errors


@_step(Phase.RUNTIME_HOOKS)
class MoveNetDevice(Step):
    """linux.netDevices: move a host interface into the container's network
    namespace (ctx.extra["init_pid"]'s), as `name` there, keeping its permanent
    global addresses, and bring it up.  Runs in pyrunc create before the
    prestart/createRuntime hooks."""
    host_name: str
    name: str


@_step(Phase.ROOTFS)
class MakeCwd(Step):
    """mkdir -p the process cwd in-root, after the mounts and before pivot_root
    (so before a read-only root is made read-only), as runc does."""
    cwd: str


@_step(Phase.CONTAINER)
class DropBoundingSet(Step):
    """Drop every cap not in `keep` from the bounding set.

    Its own step because it must come before SetUser: PR_CAPBSET_DROP needs
    CAP_SETPCAP in the effective set, which the switch to a non-root uid clears.
    """
    keep: tuple


@_step(Phase.CONTAINER)
class SetUser(Step):
    """setgroups/setresgid/setresuid with PR_SET_KEEPCAPS around them, then umask."""
    uid: int
    gid: int
    additional_gids: tuple
    umask: int | None


@_step(Phase.CONTAINER)
class SetCapabilities(Step):
    """Effective/permitted/inheritable exactly as configured, then ambient (after SetUser).

    A set the config omits is empty, as is every set when process.capabilities
    is absent (runc 1.1 does the same).  The bounding set is DropBoundingSet's.
    """
    effective: tuple
    permitted: tuple
    inheritable: tuple
    ambient: tuple


@_step(Phase.CONTAINER)
class Chdir(Step):
    """chdir to cwd, verified to be inside the root (CVE-2024-21626).

    Tried first as root; if that is refused (EACCES), a second Chdir with
    after_user=True retries as the container user, as runc does.  The second
    one does nothing when the first succeeded.
    """
    cwd: str
    after_user: bool = False


@_step(Phase.CONTAINER)
class CompileSeccomp(Step):
    """Build the BPF program of linux.seccomp (libseccomp) for LoadSeccomp.

    Always in the CONTAINER phase, so a profile libseccomp rejects fails create.
    """
    filter: object        # pyrunc.plan.seccomp.SeccompFilter

    def describe(self):
        return f"CompileSeccomp({self.filter.summary()})"

    def to_dict(self):
        return {"step": "CompileSeccomp", "phase": self.phase.value,
                "filter": asdict(self.filter)}


class LoadSeccomp(Step):
    """Install the compiled filter; with a listener, send its fd and the state.

    CONTAINER (before the identity switch: without no_new_privs it needs
    CAP_SYS_ADMIN) or START (with no_new_privs: right before Exec).
    """
    phase: Phase = Phase.CONTAINER

    def describe(self):
        return "LoadSeccomp()"

    def to_dict(self):
        return {"step": "LoadSeccomp", "phase": self.phase.value}


@_step(Phase.CONTAINER)
class ResolveExecutable(Step):
    """Find args[0] on the container's PATH before create returns (runc does the same)."""
    arg0: str
    path_env: str


# --- start: the init's last steps --------------------------------------------
# With AwaitStart first they run after `pyrunc start` released the init.
# Without it (no startContainer hooks) they run at the end of create, and the
# program is exec'd by the sealed waiter (ExecAwaitingStart).

@_step(Phase.START)
class AwaitStart(Step):
    """Block on the exec fifo until `pyrunc start` writes to it."""


@_step(Phase.START)
class SetNoNewPrivs(Step):
    pass


@_step(Phase.START)
class CloseFds(Step):
    keep_up_to: int       # fds 0..keep_up_to-1 survive exec (3 + --preserve-fds)


@_step(Phase.START)
class Exec(Step):
    args: tuple
    env: tuple


@_step(Phase.START)
class ExecSpawn(Step):
    """`exec`'s last step: exec pyrunc-init (waiter.c) from a sealed memfd in
    spawn mode; it forks the program into the container's pid namespace and
    reports its pid.  No process in the container is ever the host's
    interpreter (CVE-2019-5736), not even for the moment before execve.
    vfork: the child runs in the runtime's memory until that exec, the runtime
    asleep meanwhile, as create's init may (plan/execspawn.py)."""
    args: tuple
    env: tuple
    ctty: bool            # process.terminal: the program's own session and terminal
    vfork: bool = False


@_step(Phase.START)
class ExecAwaitingStart(Step):
    """Exec pyrunc-init (waiter.c) from a sealed memfd: it blocks on the exec
    fifo until `pyrunc start`, then execs args.  The created container's pid 1
    is then neither the host's interpreter nor a copy of the runtime's memory."""
    args: tuple
    env: tuple


class Plan(Record):
    steps: tuple

    def phase(self, phase):
        return [s for s in self.steps if s.phase is phase]

    def describe(self):
        lines, current = [], None
        for s in self.steps:
            if s.phase is not current:
                current = s.phase
                lines.append(f"[{current.value}]")
            lines.append("  " + s.describe())
        return "\n".join(lines)

    def to_list(self):
        return [s.to_dict() for s in self.steps]
