"""config.linux.seccomp -> a validated filter description, and where it is loaded.

Pure: names stay names here.  The executor resolves them with libseccomp, which
knows which syscalls exist on this machine; a name it does not know is skipped,
as runc skips it (profiles list syscalls of newer kernels and other arches).

What runc 1.1 does, and so do we:
- KILL is KILL_THREAD; ERRNO and TRACE without errnoRet return EPERM;
- one rule per syscall name; a rule whose action is the default action is
  dropped (libseccomp refuses it, and it would change nothing);
- the args of an entry: when no argument index appears twice they are ANDed in
  one rule; when any index appears twice, every condition becomes a rule of its
  own, so the rules are ORed (runc's "old behaviour", kept for compatibility).
- SCMP_ACT_NOTIFY is refused as the default action and for `write`.

Timing: without noNewPrivileges, installing a filter needs CAP_SYS_ADMIN, so
it is loaded in the CONTAINER phase before the capabilities are dropped (the
rest of our setup then runs under it, as runc's does); with noNewPrivileges it
is loaded as late as possible, right before execve.  The BPF program is always
compiled in the CONTAINER phase, so that a bad profile fails `create` with a
message instead of killing the init after `start`.
"""
from pyrunc.errors import ConfigError
from pyrunc.record import Record
from pyrunc.plan.steps import (
    CompileSeccomp, ConnectSeccompListener, DropBoundingSet, Exec, ExecAwaitingStart, LoadSeccomp,
    Phase, SetCapabilities, SetUser,
)

EPERM = 1
NOTIFY = "SCMP_ACT_NOTIFY"
# spec name -> the action libseccomp applies (KILL has meant KILL_THREAD since 2.4)
ACTIONS = {
    "SCMP_ACT_KILL": "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_THREAD": "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS": "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP": "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO": "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE": "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW": "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG": "SCMP_ACT_LOG",
    NOTIFY: NOTIFY,
}
# actions that carry a 16-bit value: ERRNO's errno, TRACE's message to the tracer
RET_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
             "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
ARCHITECTURES = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
)
FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
MAX_ARGS = 6
U64 = 1 << 64
# Syscalls the runtime itself makes between loading a NOTIFY filter and handing
# its fd to the agent: notifying them would wait forever for an agent that
# has no fd yet.  runc refuses `write` for the same reason; we send with sendmsg.
NOT_NOTIFIABLE = ("write", "sendmsg")


class Action(Record):
    name: str             # canonical SCMP_ACT_* (see ACTIONS)
    ret: int = 0          # ERRNO: the errno; TRACE: the tracer's message; else 0

    def __str__(self):
        return f"{self.name}({self.ret})" if self.name in RET_ACTIONS else self.name


class Condition(Record):
    index: int            # argument 0..5
    op: str               # SCMP_CMP_*
    value: int            # MASKED_EQ: the mask
    value_two: int = 0    # MASKED_EQ: what the masked argument must equal


class Rule(Record):
    syscall: str
    action: Action
    conditions: tuple = ()    # of Condition, all of which must hold
    where: str = ""           # JSON path of the entry, for error messages


class SeccompFilter(Record):
    default: Action
    architectures: tuple = ()  # SCMP_ARCH_* besides the native one (always in)
    flags: tuple = ()          # SECCOMP_FILTER_FLAG_*
    rules: tuple = ()          # of Rule, in config order
    listener_path: str = ""
    listener_metadata: str = ""

    @property
    def notifies(self):
        return any(r.action.name == NOTIFY for r in self.rules)

    def summary(self):
        return (f"default={self.default}, {len(self.rules)} rules, "
                f"architectures={list(self.architectures)}, flags={list(self.flags)}")


def parse_seccomp(sc):
    """The linux.seccomp object (a dict) as a SeccompFilter; ConfigError if invalid."""
    base = "linux.seccomp"
    if not isinstance(sc, dict):
        raise ConfigError(base, "must be an object")
    default = _action(sc.get("defaultAction"), sc, "defaultErrnoRet", f"{base}.defaultAction")
    if default.name == NOTIFY:
        raise ConfigError(f"{base}.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    arches = []
    for i, arch in enumerate(sc.get("architectures") or ()):
        if arch not in ARCHITECTURES:
            raise ConfigError(f"{base}.architectures[{i}]", f"{arch} is not a seccomp architecture")
        if arch not in arches:
            arches.append(arch)
    flags = []
    for i, flag in enumerate(sc.get("flags") or ()):
        if flag not in FLAGS:
            raise ConfigError(f"{base}.flags[{i}]", f"{flag} is not a seccomp filter flag")
        if flag not in flags:
            flags.append(flag)
    rules = []
    for i, entry in enumerate(sc.get("syscalls") or ()):
        rules += _rules(entry, f"{base}.syscalls[{i}]", default)
    path = sc.get("listenerPath") or ""
    f = SeccompFilter(default, tuple(arches), tuple(flags), tuple(rules), path,
                      sc.get("listenerMetadata") or "")
    if f.notifies and not path:
        raise ConfigError(f"{base}.listenerPath",
                          "a listenerPath is required when SCMP_ACT_NOTIFY is used")
    return f


def _action(name, obj, ret_key, where):
    if name not in ACTIONS:
        raise ConfigError(where, f"{name} is not a seccomp action")
    canon = ACTIONS[name]
    ret = obj.get(ret_key)
    if canon not in RET_ACTIONS:
        if ret is not None:
            raise ConfigError(where.rsplit(".", 1)[0] + "." + ret_key,
                              f"{ret_key} is not supported with action {name}")
        return Action(canon)
    if ret is None:
        return Action(canon, EPERM)
    if not _uint(ret, 1 << 32):
        raise ConfigError(where.rsplit(".", 1)[0] + "." + ret_key, "must be a uint32")
    # the kernel takes 16 bits; runc truncates the same way
    return Action(canon, ret & 0xFFFF)


def _rules(entry, where, default):
    names = entry.get("names") or ()
    if not names:
        raise ConfigError(f"{where}.names", "must name at least one syscall")
    for j, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.names[{j}]", "a syscall name must be a non-empty string")
    action = _action(entry.get("action"), entry, "errnoRet", f"{where}.action")
    conds = tuple(_condition(arg, f"{where}.args[{k}]")
                  for k, arg in enumerate(entry.get("args") or ()))
    if action.name == NOTIFY:
        for j, name in enumerate(names):
            if name in NOT_NOTIFIABLE:
                raise ConfigError(f"{where}.names[{j}]",
                                  f"SCMP_ACT_NOTIFY cannot be used for the {name} syscall")
    if action == default:
        return []   # changes nothing, and libseccomp would refuse it
    indexes = [c.index for c in conds]
    if len(set(indexes)) < len(indexes):
        groups = [(c,) for c in conds]     # runc: one rule per condition (OR)
    else:
        groups = [conds]                   # one rule, conditions ANDed
    return [Rule(name, action, group, where) for name in names for group in groups]


def _condition(arg, where):
    index, op = arg.get("index"), arg.get("op")
    if not _uint(index, MAX_ARGS):
        raise ConfigError(f"{where}.index", f"syscalls have {MAX_ARGS} arguments (0 to "
                          f"{MAX_ARGS - 1}); {index!r} is out of range")
    if op not in OPERATORS:
        raise ConfigError(f"{where}.op", f"{op} is not a seccomp operator")
    value, value_two = arg.get("value"), arg.get("valueTwo", 0)
    if not _uint(value, U64):
        raise ConfigError(f"{where}.value", "must be a uint64")
    if not _uint(value_two, U64):
        raise ConfigError(f"{where}.valueTwo", "must be a uint64")
    return Condition(index, op, value, value_two)


def _uint(v, limit):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit


# --- placing the steps ------------------------------------------------------------

def add_seccomp(config, steps):
    """steps (a whole create or exec plan, in order) with the seccomp steps added.

    ConnectSeccompListener goes first: the listener's path is a host path,
    reachable only before the namespaces and pivot_root change our view.
    CompileSeccomp and, without noNewPrivileges, LoadSeccomp go right before
    the identity switch (DropBoundingSet); with noNewPrivileges LoadSeccomp
    goes right before Exec.
    """
    sc = config.linux.seccomp
    if not sc:
        return list(steps)
    f = parse_seccomp(sc)
    steps = list(steps)
    nnp = bool(config.process and config.process.no_new_privileges)
    at = _identity_switch(steps)
    if nnp:
        steps[at:at] = [CompileSeccomp(f)]
        exec_at = next((i for i, s in enumerate(steps) if isinstance(s, (Exec, ExecAwaitingStart))),
                       len(steps))
        steps.insert(exec_at, LoadSeccomp(Phase.START))
    else:
        steps[at:at] = [CompileSeccomp(f), LoadSeccomp(Phase.CONTAINER)]
    if f.notifies:
        steps.insert(0, ConnectSeccompListener(f.listener_path))
    return steps


def _identity_switch(steps):
    for kind in (DropBoundingSet, SetUser, SetCapabilities):
        for i, s in enumerate(steps):
            if isinstance(s, kind):
                return i
    # no identity steps (never in practice): the end of the CONTAINER phase
    last = [i for i, s in enumerate(steps) if s.phase is Phase.CONTAINER]
    return last[-1] + 1 if last else len(steps)
