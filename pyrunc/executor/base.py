"""What every step handler gets, and the registry that maps step types to handlers.

Handlers live in the executor modules (namespaces, rootfs, process, ...), each
registering itself with @handles(StepType).  They do all kernel work through
`ctx.sys`, which is pyrunc.syscalls in real life and a recording double in
unit tests.
"""
from pyrunc.record import Record, field

_HANDLERS = {}


def handles(step_type):
    def register(fn):
        _HANDLERS[step_type] = fn
        return fn
    return register


class Context(Record, frozen=False):
    sys: object                      # pyrunc.syscalls, or tests.doubles.RecordingSys
    config: object                   # pyrunc.spec.config.Config
    rootfs: str = ""                 # host path of the rootfs (before pivot)
    root_fd: int = -1                # O_PATH fd of the rootfs, set by BindRootfs
    userns: bool = False             # the init runs in a new user namespace
    console_socket_fd: int = -1      # connected unix socket for --console-socket
    state_json: bytes = b""          # container state, stdin of hooks
    exec_path: str = ""              # set by ResolveExecutable
    extra: dict = field(default_factory=dict)


# Which executor module registers the handler of each step type, keyed by
# class name (plan/steps.py stays plain data that knows nothing of the
# executor).  handler_for imports exactly the one module a step needs, on
# first use: a plain config never loads the seccomp, console, extras or netdev
# handlers (~0.1 ms each), and `update` (cgroup steps) loads only cgroups.
# tests/unit/test_lazy_handlers.py checks that every Step subclass of
# plan/steps.py is here and that its module really registers it.
_MODULE_OF = {
    **dict.fromkeys(("BornInCgroup", "CreateCgroup", "EnableControllers", "WriteCgroupFile",
                     "SetMemoryLimits", "SetCpuMax", "SetDevicesV1", "LoadDeviceFilter",
                     "JoinCgroup", "EnterCgroups"), "cgroups"),
    **dict.fromkeys(("OpenEarly", "JoinNamespace", "CreateUserNamespace", "CreateNamespaces",
                     "ForkInit", "CloneInit", "SetTimeOffsets"), "namespaces"),
    **dict.fromkeys(("ConnectSeccompListener", "CompileSeccomp", "LoadSeccomp"), "seccomp"),
    **dict.fromkeys(("SetRootPropagation", "BindRootfs", "MountFs", "MountCgroup", "MakeDevice",
                     "MakeSymlink"), "rootfs"),
    "SetupConsole": "console",
    "RunHooks": "hooks",
    "JoinSessionKeyring": "keyring",
    **dict.fromkeys(("ReopenDevNull", "PivotRoot", "MoveRoot", "MaskPath", "ReadonlyPath",
                     "RemountRootReadonly"), "jail"),
    **dict.fromkeys(("SetHostname", "SetDomainname", "WriteSysctl", "BringUpLoopback",
                     "SetOomScoreAdj", "SetRlimit", "MakeCwd", "Chdir", "ResolveExecutable",
                     "SetNoNewPrivs", "CloseFds", "Exec"), "process"),
    **dict.fromkeys(("DropBoundingSet", "SetUser", "SetCapabilities"), "identity"),
    **dict.fromkeys(("SetMemoryPolicy", "SetPersonality", "SetIOPriority", "SetScheduler",
                     "SetCpuAffinity"), "extras"),
    "MoveNetDevice": "netdev",
    "AwaitStart": "init",
    **dict.fromkeys(("ExecAwaitingStart", "ExecSpawn"), "waiter"),
}


def handler_for(step):
    try:
        return _HANDLERS[type(step)]
    except KeyError:
        pass
    # Importing the module registers its handlers; done on first use so that
    # commands that never execute a plan (state, kill, ...) never import them.
    name = _MODULE_OF.get(type(step).__name__)
    if name is not None:
        __import__("pyrunc.executor." + name)
    try:
        return _HANDLERS[type(step)]
    except KeyError:
        raise NotImplementedError(f"no handler for {type(step).__name__}") from None


def run_steps(steps, ctx):
    check = ctx.extra.get("fault_at")   # set by pyrunc.faults, only when injection is on
    for step in steps:
        if check is not None:
            check(step, ctx)
        handler_for(step)(step, ctx)
