"""Plan the less common process and container settings: scheduler, I/O
priority, personality, NUMA memory policy, exec CPU affinity, network devices,
and the security labels and resctrl settings pyrunc cannot honour.

Pure apart from `Host`, the few facts about this machine the checks need
(is AppArmor/SELinux on, is resctrl mounted, which NUMA nodes exist); it is
read lazily and tests pass their own.  What is refused, and why:

- process.apparmorProfile, process.selinuxLabel, linux.mountLabel: pyrunc
  applies no LSM label.  runc 1.1.5 fails on a host without the LSM too
  (AppArmor: writing the exec attribute fails; SELinux: its validator refuses
  the label; a mount label makes the tmpfs/devpts mounts fail), so failing is
  both what runc does here and the only safe answer: a confinement silently
  dropped is worse than a container that does not start.
- linux.intelRdt: pyrunc has no resctrl support (runtime-spec: no resctrl
  mounted -> error).  The two schema fields runc 1.1.5 checks keep its words.
"""
import posix   # not os: `exec` would pay ~0.7 ms for it (pyrunc/pathstr.py)

from pyrunc import pathstr
from pyrunc.errors import ConfigError
from pyrunc.plan.process import go_quote
from pyrunc.plan.steps import (
    Chdir, MoveNetDevice, SetCpuAffinity, SetIOPriority, SetMemoryPolicy, SetPersonality,
    SetScheduler,
)

# Kernel ABI numbers, by the names configs use (uapi linux/sched.h, ioprio.h,
# mempolicy.h, personality.h).  SCHED_ISO is in the spec but not in Linux.
SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_CLASS_SHIFT = 13
IOPRIO_WHO_PROCESS = 1
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
              "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
              "MPOL_F_STATIC_NODES": 1 << 15}
# modes whose node list must be empty / must not be
_MPOL_NO_NODES = frozenset(("MPOL_DEFAULT", "MPOL_LOCAL"))
_MPOL_NEED_NODES = frozenset(("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY",
                              "MPOL_WEIGHTED_INTERLEAVE"))
_RT_POLICIES = frozenset(("SCHED_FIFO", "SCHED_RR"))
IFNAMSIZ = 16


class Host:
    """Facts about this machine, each read on first use."""

    def apparmor_enabled(self):
        try:
            with open("/sys/module/apparmor/parameters/enabled") as f:
                return f.read(1) == "Y"
        except OSError:
            return False

    def selinux_enabled(self):
        # selinuxfs is mounted (and so the policy loaded) exactly when this exists
        return pathstr.exists("/sys/fs/selinux/enforce")

    def resctrl_mounted(self):
        try:
            with open("/proc/self/mountinfo") as f:
                return any(" - resctrl " in line for line in f)
        except OSError:
            return False

    def numa_nodes(self):
        try:
            names = posix.listdir("/sys/devices/system/node")
        except OSError:
            return frozenset((0,))   # a kernel without NUMA has exactly node 0
        return frozenset(int(n[4:]) for n in names if n.startswith("node") and n[4:].isdigit())


# --- the entry points build.py and exec_into.py call ------------------------

def add_extras(config, container_steps, *, for_exec=False, host=None, warn=None):
    """container_steps (plan_process's) with the extras' CONTAINER steps put
    right before the identity switch, after checking what pyrunc refuses.

    for_exec: a process joining the container (`pyrunc exec`): its own
    process.* settings and the container's personality and memory policy (they
    bind every process of the container), not the container-wide checks.
    """
    host = host or Host()
    warn = warn or _log_warning
    proc = config.process
    check_labels(proc, config.linux, host, for_exec=for_exec)
    if not for_exec:
        check_intel_rdt(config.linux.intel_rdt, host)
    extra = []
    if config.linux.memory_policy is not None:
        extra.append(memory_policy_step(config.linux.memory_policy, host))
    if config.linux.personality is not None:
        extra.append(personality_step(config.linux.personality, warn))
    if proc is not None and proc.io_priority is not None:
        extra.append(io_priority_step(proc.io_priority))
    if proc is not None and proc.scheduler is not None:
        extra.append(scheduler_step(proc.scheduler))
    if not extra:
        return list(container_steps)
    steps = list(container_steps)
    at = next((i for i, s in enumerate(steps) if isinstance(s, Chdir)), len(steps))
    steps[at:at] = extra
    return steps


def around_cgroup_join(process, join_steps):
    """`exec`: join_steps (the CGROUPS-phase JoinCgroup) between the initial and
    the final process.execCPUAffinity.  runtime-spec: not for the init, so
    build_plan never calls this."""
    aff = process.exec_cpu_affinity if process is not None else None
    if not aff:
        return list(join_steps)
    steps = []
    initial = parse_cpu_list(aff.get("initial") or "", "process.execCPUAffinity.initial")
    final = parse_cpu_list(aff.get("final") or "", "process.execCPUAffinity.final")
    if initial:
        steps.append(SetCpuAffinity(initial, "process.execCPUAffinity.initial"))
    steps += join_steps
    if final:
        steps.append(SetCpuAffinity(final, "process.execCPUAffinity.final"))
    return steps


def net_device_steps(config):
    """RUNTIME_HOOKS-phase steps for linux.netDevices (create only)."""
    devices = config.linux.net_devices
    if not devices:
        return []
    if config.linux.namespace("network") is None:
        raise ConfigError("linux.netDevices", "unable to move network devices without a "
                          "private network namespace (linux.namespaces has no network)")
    steps, targets = [], {}
    for host_name in sorted(devices):
        where = _key_path("linux.netDevices", host_name)
        entry = devices[host_name] or {}
        problem = interface_name_problem(host_name)
        if problem:
            raise ConfigError(where, f"invalid network device name {go_quote(host_name)}: "
                              f"{problem}")
        name = entry.get("name") or host_name
        problem = interface_name_problem(name, template_ok=True)
        if problem:
            raise ConfigError(where + ".name", f"invalid network device name {go_quote(name)}: "
                              f"{problem}")
        if "%d" not in name and name in targets:
            raise ConfigError(where + ".name", f"{go_quote(targets[name])} and "
                              f"{go_quote(host_name)} would both be named {go_quote(name)} "
                              "in the container")
        targets[name] = host_name
        steps.append(MoveNetDevice(host_name, name))
    return steps


# --- checks ----------------------------------------------------------------

def check_labels(proc, linux, host, *, for_exec=False):
    if proc is not None and proc.apparmor_profile:
        why = ("pyrunc does not implement apparmor" if host.apparmor_enabled()
               else "apparmor is not enabled on this host")
        raise ConfigError("process.apparmorProfile",
                          f"apparmor profile {go_quote(proc.apparmor_profile)} is specified "
                          f"in config, but {why}")
    if proc is not None and proc.selinux_label:
        raise ConfigError("process.selinuxLabel",
                          f"selinux label is specified in config, but {_selinux_why(host)}")
    if not for_exec and linux.mount_label:
        raise ConfigError("linux.mountLabel",
                          f"selinux mount label is specified in config, but {_selinux_why(host)}")


def _selinux_why(host):
    # runc 1.1.5's words when the host has no SELinux
    return ("pyrunc does not implement selinux" if host.selinux_enabled()
            else "selinux is disabled or not supported")


def check_intel_rdt(rdt, host):
    if rdt is None:
        return
    if host.resctrl_mounted():
        raise ConfigError("linux.intelRdt", "intelRdt is specified in config, but pyrunc does "
                          "not implement Intel RDT")
    # no resctrl: runc 1.1.5's words for the fields it checks, then runc 1.2's
    if rdt.get("l3CacheSchema"):
        raise ConfigError("linux.intelRdt", "intelRdt.l3CacheSchema is specified in config, "
                          "but Intel RDT/CAT is not enabled")
    if rdt.get("memBwSchema"):
        raise ConfigError("linux.intelRdt", "intelRdt.memBwSchema is specified in config, "
                          "but Intel RDT/MBA is not enabled")
    raise ConfigError("linux.intelRdt", "intelRdt is specified in config, but Intel RDT is "
                      "not supported or enabled (no resctrl filesystem is mounted)")


# --- one step per setting ------------------------------------------------------

def scheduler_step(sched):
    where = "process.scheduler"
    policy = sched.get("policy")
    if policy == "SCHED_ISO":
        raise ConfigError(where + ".policy", "SCHED_ISO is not implemented by the Linux kernel")
    if policy not in SCHED_POLICIES:
        raise ConfigError(_at(where, sched, "policy"),
                          f"unknown scheduling policy {go_quote(str(policy))}")
    nice = sched.get("nice", 0)
    priority = sched.get("priority", 0)
    runtime, deadline, period = (sched.get(k, 0) for k in ("runtime", "deadline", "period"))
    flags = tuple(sched.get("flags") or ())
    for f in flags:
        if f not in SCHED_FLAGS:
            raise ConfigError(where + ".flags", f"unknown scheduler flag {go_quote(f)}")
    if not -20 <= nice <= 19:
        raise ConfigError(where + ".nice", f"nice {nice} is out of range (-20 to 19)")
    if policy in _RT_POLICIES:
        if not 1 <= priority <= 99:
            raise ConfigError(_at(where, sched, "priority"),
                              f"{policy} needs a priority from 1 to 99, not {priority}")
    elif priority != 0:
        raise ConfigError(where + ".priority", f"{policy} takes no priority (0), not {priority}")
    if policy == "SCHED_DEADLINE":
        if not 0 < runtime <= deadline or (period and deadline > period):
            raise ConfigError(where, "SCHED_DEADLINE needs 0 < runtime <= deadline <= period "
                              f"(period 0 means deadline), got {runtime}, {deadline}, {period}")
    return SetScheduler(policy, nice, priority, flags, runtime, deadline, period)


def io_priority_step(iop):
    io_class = iop.get("class")
    if io_class not in IOPRIO_CLASSES:
        raise ConfigError(_at("process.ioPriority", iop, "class"),
                          f"unknown I/O priority class {go_quote(str(io_class))}")
    priority = iop.get("priority", 0)
    if not 0 <= priority <= 7:
        raise ConfigError("process.ioPriority.priority",
                          f"priority {priority} is out of range (0 to 7)")
    return SetIOPriority(io_class, priority)


def personality_step(pers, warn):
    domain = pers.get("domain")
    if domain is None:
        raise ConfigError("linux.personality", "domain is required")
    if domain not in PERSONALITY_DOMAINS:
        raise ConfigError("linux.personality.domain",
                          f"unknown personality domain {go_quote(str(domain))}")
    if pers.get("flags"):
        # runtime-spec defines no flag yet; runc 1.2 warns and goes on, so do we
        warn(f"linux.personality.flags {list(pers['flags'])} ignored: "
             "the runtime-spec defines no personality flags")
    return SetPersonality(domain)


def memory_policy_step(pol, host):
    where = "linux.memoryPolicy"
    mode = pol.get("mode")
    if mode not in MPOL_MODES:
        raise ConfigError(_at(where, pol, "mode"),
                          f"unknown memory policy mode {go_quote(str(mode))}")
    flags = tuple(pol.get("flags") or ())
    for f in flags:
        if f not in MPOL_FLAGS:
            raise ConfigError(where + ".flags", f"unknown memory policy flag {go_quote(f)}")
    if "MPOL_F_STATIC_NODES" in flags and "MPOL_F_RELATIVE_NODES" in flags:
        raise ConfigError(where + ".flags",
                          "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")
    nodes = parse_cpu_list(pol.get("nodes") or "", where + ".nodes", what="node")
    if mode in _MPOL_NO_NODES and nodes:
        raise ConfigError(where + ".nodes", f"{mode} takes no nodes")
    if mode in _MPOL_NEED_NODES and not nodes:
        raise ConfigError(_at(where, pol, "nodes"), f"{mode} needs at least one node")
    if nodes and "MPOL_F_RELATIVE_NODES" not in flags:
        # relative nodes are positions in the allowed set, not node numbers
        present = host.numa_nodes()
        missing = [n for n in nodes if n not in present]
        if missing:
            raise ConfigError(where + ".nodes", f"node {missing[0]} does not exist on this host "
                              f"(nodes: {format_list(sorted(present))})")
    return SetMemoryPolicy(mode, nodes, flags)


# --- helpers -------------------------------------------------------------------

_MAX_CPU = 8192   # far beyond any machine; keeps a typo like "0-99999999" from eating memory


def parse_cpu_list(text, where, what="cpu"):
    """ "0-3,7" -> (0, 1, 2, 3, 7), the kernel's list format; "" -> ()."""
    out = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise ConfigError(where, f"invalid {what} list {go_quote(text)}") from None
        if first > last or last >= _MAX_CPU:
            raise ConfigError(where, f"invalid {what} range {go_quote(part)} in {go_quote(text)}")
        out.update(range(first, last + 1))
    return tuple(sorted(out))


def format_list(numbers):
    """(0, 1, 2, 5) -> "0-2,5"."""
    parts, start, prev = [], None, None
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else str(start))
    return ",".join(parts)


def interface_name_problem(name, template_ok=False):
    """Why the kernel would refuse `name` as an interface name, or None
    (dev_valid_name: 1-15 bytes, not . or .., no '/', ':' or whitespace)."""
    if not name or len(name.encode()) >= IFNAMSIZ:
        return f"must be 1 to {IFNAMSIZ - 1} bytes long"
    if name in (".", ".."):
        return "is reserved"
    if any(c in "/:" or c.isspace() for c in name):
        return "contains '/', ':' or whitespace"
    if "%" in name and not (template_ok and name.count("%") == 1 and "%d" in name):
        return "a '%' is allowed only as one '%d' template"
    return None


def _at(base, obj, key):
    """base.key when the document has that key, else base: an error's path
    must point at something that is there."""
    return f"{base}.{key}" if key in obj else base


def _key_path(base, key):
    from pyrunc.spec.validate import json_path
    return json_path(base.split(".") + [key])


def _log_warning(text):
    from pyrunc.log import log
    log.warning(text)


__all__ = ["Host", "add_extras", "around_cgroup_join", "net_device_steps", "parse_cpu_list",
           "SCHED_POLICIES", "SCHED_FLAGS", "IOPRIO_CLASSES", "PERSONALITY_DOMAINS",
           "MPOL_MODES", "MPOL_FLAGS"]
