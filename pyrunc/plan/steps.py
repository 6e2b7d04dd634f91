"""The typed steps a plan is made of.

A plan is an ordered tuple of these.  Each step names the phase it belongs to:
the phase says which process carries it out and when (see Phase).  Steps are
plain data: no step does anything by itself; pyrunc.executor does.
"""
from dataclasses import dataclass, fields
import enum


class Phase(enum.Enum):
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


@dataclass(frozen=True)
class Step:
    phase = None  # class attribute set by each subclass

    def describe(self):
        """One readable line for `pyrunc plan`."""
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{type(self).__name__}({args})"

    def to_dict(self):
        d = {"step": type(self).__name__, "phase": self.phase.value}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d


def _step(phase):
    def wrap(cls):
        cls = dataclass(frozen=True)(cls)
        cls.phase = phase
        return cls
    return wrap


# --- namespaces (child) ------------------------------------------------------

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
class SetTimeOffsets(Step):
    offsets: tuple        # (("monotonic", secs, nanosecs), ("boottime", secs, nanosecs))


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


# --- runtime hooks (pyrunc create) -------------------------------------------

@dataclass(frozen=True)
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
class ResolveExecutable(Step):
    """Find args[0] on the container's PATH before create returns (runc does the same)."""
    arg0: str
    path_env: str


# --- start (init after release) ----------------------------------------------

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


@dataclass(frozen=True)
class Plan:
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
