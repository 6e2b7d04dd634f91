"""Rules of runtime-spec 1.2 (and of runc, where clients rely on them) that a
JSON Schema cannot say: they tie several fields together.

Works on the raw dict, after schema validation, so that errors carry the JSON
path of the offending value.  Each failed rule raises ConfigError(path, msg);
wording follows runc 1.1.5 where it has a message for the same mistake.
Things runc only warns about are returned as a list of warning strings.

    warnings = check_config(doc, require_process=True)
    check_process(doc["process"], "process")      # also used for exec --process
"""
import posix

from pyrunc import fastjson
from pyrunc import pathstr
from pyrunc.errors import ConfigError
from pyrunc.spec.config import HOOK_STAGES
from pyrunc.spec.validate import json_path

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
PROPAGATIONS = ("private", "shared", "slave", "unbindable",
                "rprivate", "rshared", "rslave", "runbindable")
RLIMITS = frozenset("RLIMIT_" + n for n in (
    "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS",
    "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"))
CLOCKS = ("monotonic", "boottime")
# seccomp actions that carry an errno (the spec: an errno with any other
# action is an error)
ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
# sysctls that live in the ipc namespace (runc's list; fs.mqueue.* by prefix)
IPC_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                         "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                         "kernel.shm_rmid_forced"))


def _q(text):
    """Quote like Go's %q, which runc's messages use."""
    return fastjson.dumps(text)


def _host_netns(path):
    """True when `path` is pyrunc's own network namespace (OSError if unreadable)."""
    st, own = posix.stat(path), posix.stat("/proc/self/ns/net")
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def check_config(doc, require_process=True, host_netns=_host_netns):
    """Check a schema-valid config.json dict; return runc-style warnings.

    `host_netns(path) -> bool` (may raise OSError) is injectable so tests need
    no real namespaces.
    """
    warnings = []
    root = doc.get("root")
    if not root:
        raise ConfigError("root", "root must be specified")
    if not root.get("path"):
        raise ConfigError("root.path", "root.path must not be empty")

    proc = doc.get("process")
    if proc is None:
        if require_process:
            raise ConfigError("process", "process property must not be empty")
    else:
        check_process(proc, "process")

    for i, m in enumerate(doc.get("mounts") or ()):
        dest = m.get("destination", "")
        if dest == "":
            raise ConfigError(f"mounts[{i}].destination", "mount destination must not be empty")
        if not dest.startswith("/"):
            # runc 1.1.5 accepts these (relative to the container's /) with this warning
            warnings.append(f"mount destination {dest} is not absolute. Support for "
                            "non-absolute mount destinations will be removed in a future release.")

    hooks = doc.get("hooks") or {}
    for stage in HOOK_STAGES:      # unknown stages are ignored, as the spec asks
        for i, hook in enumerate(hooks.get(stage) or ()):
            if not hook["path"].startswith("/"):
                raise ConfigError(f"hooks.{stage}[{i}].path",
                                  f"hook path {_q(hook.get('path', ''))} must be absolute")

    _check_linux(doc, doc.get("linux") or {}, host_netns)
    return warnings


def check_process(proc, base="process"):
    """Rules for a process object (config.json's, or exec's process.json).

    `base` prefixes error paths: "process" for config.json, "" for a
    stand-alone process.json.
    """
    base = base + "." if base else ""
    args = proc.get("args")
    if not args:
        raise ConfigError(f"{base}args", "args must not be empty")
    if not proc.get("cwd", "").startswith("/"):
        raise ConfigError(f"{base}cwd", "cwd must be an absolute path")
    for i, var in enumerate(proc.get("env") or ()):
        if "=" not in var:
            raise ConfigError(f"{base}env[{i}]", f"invalid environment variable: {_q(var)}")
        if var.startswith("="):
            raise ConfigError(f"{base}env[{i}]",
                              f"environment variable name can't be empty: {_q(var)}")
    seen = set()
    for i, rl in enumerate(proc.get("rlimits") or ()):
        where = f"{base}rlimits[{i}]"
        if rl["type"] not in RLIMITS:
            raise ConfigError(f"{where}.type", f"wrong rlimit value: {rl['type']}")
        if rl["type"] in seen:
            raise ConfigError(f"{where}.type", f"duplicate rlimit type {rl['type']}")
        seen.add(rl["type"])
        if rl["soft"] > rl["hard"]:
            raise ConfigError(where, f"{rl['type']} soft limit {rl['soft']} "
                                     f"exceeds hard limit {rl['hard']}")


def _namespaces(linux):
    """type -> (index, path or None); duplicate and unknown types raise."""
    found = {}
    for i, ns in enumerate(linux.get("namespaces") or ()):
        t, path = ns.get("type"), ns.get("path") or None
        if t not in NAMESPACE_TYPES:
            raise ConfigError(f"linux.namespaces[{i}].type", f"namespace {_q(t)} does not exist")
        if t in found:
            raise ConfigError(f"linux.namespaces[{i}].type", f"duplicated namespace {_q(t)}")
        if path is not None and not pathstr.isabs(path):
            raise ConfigError(f"linux.namespaces[{i}].path",
                              f"namespace path {_q(path)} must be absolute")
        found[t] = (i, path)
    return found


def _check_linux(doc, linux, host_netns):
    ns = _namespaces(linux)

    if "user" in ns and ns["user"][1] is None:
        for kind in ("uid", "gid"):
            if not linux.get(kind + "Mappings"):
                raise ConfigError(f"linux.{kind}Mappings",
                                  f"user namespaces enabled, but no {kind} mappings found")
    if "user" not in ns:
        for kind in ("uid", "gid"):
            if linux.get(kind + "Mappings"):
                raise ConfigError(f"linux.{kind}Mappings", f"{kind} mappings specified, "
                                  "but the config has no user namespace")

    for field in ("hostname", "domainname"):
        if doc.get(field) and "uts" not in ns:
            raise ConfigError(field, f"unable to set {field} without a private UTS namespace")

    for key in linux.get("sysctl") or {}:
        _check_sysctl(doc, key, ns, host_netns)

    offsets = linux.get("timeOffsets") or {}
    if offsets:
        if "time" not in ns:
            raise ConfigError("linux.timeOffsets",
                              "time offsets specified, but the config has no time namespace")
        if ns["time"][1] is not None:
            raise ConfigError("linux.timeOffsets",
                              "time offsets cannot be set when joining an existing time namespace")
    for clock, off in offsets.items():
        if clock not in CLOCKS:
            raise ConfigError(json_path(["linux", "timeOffsets", clock]),
                              f"unknown clock {_q(clock)}")
        if off.get("nanosecs", 0) >= 1_000_000_000:
            raise ConfigError(json_path(["linux", "timeOffsets", clock, "nanosecs"]),
                              "nanosecs must be less than 1000000000")

    prop = linux.get("rootfsPropagation")
    if prop and prop not in PROPAGATIONS:
        raise ConfigError("linux.rootfsPropagation", f"rootfsPropagation={prop} is not supported")

    for field in ("maskedPaths", "readonlyPaths"):
        for i, p in enumerate(linux.get(field) or ()):
            if not p.startswith("/"):
                raise ConfigError(f"linux.{field}[{i}]", f"path {_q(p)} must be absolute")

    for i, dev in enumerate(linux.get("devices") or ()):
        if dev["type"] != "p" and ("major" not in dev or "minor" not in dev):
            raise ConfigError(f"linux.devices[{i}]",
                              f"major and minor are required for device type {dev['type']}")

    if linux.get("seccomp"):
        _check_seccomp(linux["seccomp"])


def _check_sysctl(doc, key, ns, host_netns):
    where = json_path(["linux", "sysctl", key])
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if "ipc" not in ns:
            raise ConfigError(where, f"sysctl {_q(key)} is not allowed in the hosts ipc namespace")
        return
    if key.startswith("net."):
        if "network" not in ns:
            raise ConfigError(where, f"sysctl {_q(key)} not allowed in host network namespace")
        index, path = ns["network"]
        if path is not None:
            try:
                shared = host_netns(path)
            except OSError as e:
                raise ConfigError(f"linux.namespaces[{index}].path", f"invalid netns path: "
                                  f"stat {path}: {posix.strerror(e.errno).lower()}") from None
            if shared:
                raise ConfigError(where, f"sysctl {_q(key)} not allowed in host network namespace")
        return
    if key in ("kernel.hostname", "kernel.domainname") and "uts" in ns:
        field = key.split(".")[1]
        if doc.get(field):
            raise ConfigError(where, f"sysctl {_q(key)} is not allowed as it conflicts "
                                     f"with the OCI {_q(field)} field")
        return
    raise ConfigError(where, f"sysctl {_q(key)} is not in a separate kernel namespace")


def _check_seccomp(sc):
    if sc.get("listenerMetadata") and not sc.get("listenerPath"):
        raise ConfigError("linux.seccomp.listenerMetadata",
                          "listenerMetadata is set but listenerPath is not")
    if "defaultErrnoRet" in sc and sc["defaultAction"] not in ERRNO_ACTIONS:
        raise ConfigError("linux.seccomp.defaultErrnoRet",
                          f"defaultErrnoRet is not supported with action {sc['defaultAction']}")
    for i, rule in enumerate(sc.get("syscalls") or ()):
        if "errnoRet" in rule and rule["action"] not in ERRNO_ACTIONS:
            raise ConfigError(f"linux.seccomp.syscalls[{i}].errnoRet",
                              f"errnoRet is not supported with action {rule['action']}")
