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


# The modules holding the handlers of a phase, for a step met without
# init.preload (which launch runs before its fork): `start` and `delete` run
# the poststart/poststop hooks and must not import every executor module.
_PARENT_PHASES = {"cgroups": ("cgroups", "extras"), "runtime-hooks": ("hooks", "extras"),
                  "poststart": ("hooks",), "poststop": ("hooks",)}
_ALL = ("namespaces", "rootfs", "process", "hooks", "console", "keyring", "init", "seccomp",
        "cgroups", "extras", "waiter")


def _load_handlers(phase=None):
    # Importing registers the handlers; done on first use so that commands that
    # never execute a plan (state, kill, ...) never import them.
    for name in _PARENT_PHASES.get(getattr(phase, "value", None), _ALL):
        __import__("pyrunc.executor." + name)


def handler_for(step):
    try:
        return _HANDLERS[type(step)]
    except KeyError:
        _load_handlers(step.phase)
    try:
        return _HANDLERS[type(step)]
    except KeyError:
        _load_handlers()
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
