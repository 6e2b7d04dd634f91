"""Plan the process half of a container: what the init does to itself between
pivot_root and execve.

Pure: config in, steps out.  The order inside the CONTAINER phase follows
runc 1.1: the namespace-wide settings first (hostname, sysctls, loopback, ...)
while the init still has every privilege, then the switch of identity
(bounding set, ids, caps), then the executable lookup as the final user so that
a missing or unreadable program fails `create` with the words clients map to
exit codes 127/126.  build.py ranks the namespace-wide steps before the
rootfs's readonly/mask steps (sysctls must be written before /proc/sys turns
read-only) and everything else here after them.
"""

from pyrunc import pathstr
from pyrunc.errors import ConfigError
from pyrunc.plan.steps import (
    BringUpLoopback, Chdir, CloseFds, DropBoundingSet, Exec, MakeCwd, ResolveExecutable,
    SetCapabilities, SetDomainname, SetHostname, SetNoNewPrivs, SetOomScoreAdj, SetRlimit,
    SetUser, WriteSysctl,
)

# Linux resource names a config may ask for (all of them; the executor maps
# them to the running architecture's numbers: syscalls.C.RLIMIT_*).
RLIMIT_TYPES = frozenset((
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
    "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
    "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
))


def plan_process(config, *, preserve_fds, userns, for_exec=False):
    """(container_steps, start_steps) for config.process.

    One exception to the names: MakeCwd (when the cwd is not "/") is a ROOTFS
    step, the first of container_steps; it belongs after the rootfs mounts and
    before pivot_root, where runc creates a missing cwd.

    for_exec: the process joins a running container (`pyrunc exec`): leave out
    what belongs to the container as a whole (hostname, sysctls, loopback,
    creating the cwd).
    """
    proc = config.process
    if proc is None:
        raise ConfigError("process", "process property must not be empty")
    if not proc.args:
        raise ConfigError("process.args", "args must not be empty")
    if not pathstr.isabs(proc.cwd):
        raise ConfigError("process.cwd", f"cwd {proc.cwd!r} is not an absolute path")
    env = normalize_env(proc.env)
    user = proc.user
    if userns:
        _check_mapped(config, user)

    steps = []
    if not for_exec and pathstr.normpath(proc.cwd) != "/":
        steps.append(MakeCwd(proc.cwd))
    if not for_exec:
        if config.hostname:
            steps.append(SetHostname(config.hostname))
        if config.domainname:
            steps.append(SetDomainname(config.domainname))
        for key, value in config.linux.sysctl.items():
            steps.append(WriteSysctl(key, str(value)))
        net = config.linux.namespace("network")
        if net is not None and not net.path:
            steps.append(BringUpLoopback())
    if proc.oom_score_adj is not None:
        steps.append(SetOomScoreAdj(proc.oom_score_adj))
    for i, rl in enumerate(proc.rlimits):
        if rl.type not in RLIMIT_TYPES:
            raise ConfigError(f"process.rlimits[{i}].type", f"wrong rlimit value: {rl.type}")
        steps.append(SetRlimit(rl.type, rl.soft, rl.hard))

    caps = proc.capabilities
    # runc 1.1 treats an absent capabilities object as all sets empty:
    # the process runs with no capabilities at all, bounding set included.
    def capset(name):
        return tuple(getattr(caps, name) or ()) if caps is not None else ()

    steps += [
        Chdir(proc.cwd),
        DropBoundingSet(capset("bounding")),
        SetUser(user.uid, user.gid, tuple(user.additional_gids), user.umask),
        Chdir(proc.cwd, after_user=True),
        SetCapabilities(capset("effective"), capset("permitted"), capset("inheritable"),
                        capset("ambient")),
        ResolveExecutable(proc.args[0], _getenv(env, "PATH")),
    ]

    start = []
    if proc.no_new_privileges:
        start.append(SetNoNewPrivs())
    start += [CloseFds(3 + preserve_fds), Exec(tuple(proc.args), env)]
    return steps, start


def normalize_env(env):
    """process.env as the program will see it, by the rules of Go's os.Setenv.

    runc sets each entry in turn: a later duplicate replaces the value but keeps
    the first one's position.  Malformed entries fail create, with runc's words.
    """
    order, values = [], {}
    for entry in env:
        name, eq, value = entry.partition("=")
        if not eq:
            raise ConfigError("process.env", f"invalid environment variable: {go_quote(entry)}")
        if not name:
            raise ConfigError("process.env",
                              f"environment variable name can't be empty: {go_quote(entry)}")
        if "\0" in name:
            raise ConfigError("process.env", "environment variable name can't contain "
                              f"null(\\x00): {go_quote(entry)}")
        if "\0" in value:
            raise ConfigError("process.env", "environment variable value can't contain "
                              f"null(\\x00): {go_quote(entry)}")
        if name not in values:
            order.append(name)
        values[name] = value
    return tuple(f"{name}={values[name]}" for name in order)


def _getenv(env, name):
    prefix = name + "="
    for entry in env:
        if entry.startswith(prefix):
            return entry[len(prefix):]
    return ""


def _check_mapped(config, user):
    """runc refuses ids the user namespace cannot represent before trying setuid."""
    def mapped(ident, mappings):
        return not mappings or any(m.container_id <= ident < m.container_id + m.size
                                   for m in mappings)
    if not mapped(user.uid, config.linux.uid_mappings):
        raise ConfigError("process.user.uid", "cannot set uid to unmapped user in user namespace")
    if not mapped(user.gid, config.linux.gid_mappings):
        raise ConfigError("process.user.gid", "cannot set gid to unmapped user in user namespace")


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(s):
    """A string quoted the way Go's %q prints it (enough for error messages)."""
    out = []
    for ch in s:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'

