"""Handlers for the cgroup steps (Phase.CGROUPS).

In `create` they run in pyrunc's parent process right after the fork, with
ctx.extra["child_pid"] the forked child (the init is forked from it later, so
it is born inside the cgroups).  `update` runs the write steps through the
same handlers.  Every cgroup directory made is appended to
ctx.extra["cgroup_created"] as soon as it exists, so a failure halfway still
leaves a complete list for cleanup.
"""
import errno

from pyrunc import pathstr
from pyrunc.errors import ConfigError, RuntimeFailure, oserror_text
from pyrunc.executor.base import handles
from pyrunc.plan import devices as dev
from pyrunc.plan.steps import (BornInCgroup, CreateCgroup, EnableControllers, EnterCgroups,
                               JoinCgroup, LoadDeviceFilter, SetCpuMax, SetDevicesV1,
                               SetMemoryLimits, WriteCgroupFile)


def _read(sys, path):
    """Stripped text of a cgroup file; "" when it is missing (or a recording sys gives nothing)."""
    try:
        data = sys.read_file(path)
    except FileNotFoundError:
        return ""
    return data.decode().strip() if data else ""


def _exists(sys, path):
    try:
        sys.read_file(path)
        return True
    except FileNotFoundError:
        return False


def _write(sys, field, path, value):
    try:
        sys.write_file(path, value)
    except OSError as e:
        raise ConfigError(field, f'failed to write "{value}" to {path}: {oserror_text(e)}') \
            from None


@handles(CreateCgroup)
def create_cgroup(step, ctx):
    sys = ctx.sys
    created = ctx.extra.setdefault("cgroup_created", [])
    rel = step.dir[len(step.base):].strip("/")
    parent, made_leaf = step.base, False
    for part in rel.split("/"):
        path = pathstr.join(parent, part)
        try:
            sys.mkdir(path, 0o755)
            created.append(path)
            made_leaf = True
        except FileExistsError:
            made_leaf = False
        except OSError as e:
            raise RuntimeFailure(f"cannot create cgroup {path}: {oserror_text(e)}") from None
        if step.cpuset:
            _inherit_cpuset(sys, parent, path)
        parent = path
    if not made_leaf:
        procs = _read(sys, pathstr.join(step.dir, "cgroup.procs")).split()
        if procs:
            raise ConfigError("linux.cgroupsPath", f"cgroup {step.dir} is not empty: "
                              f"{len(procs)} process(es) found")


def _inherit_cpuset(sys, parent, path):
    # a v1 cpuset cgroup starts with no cpus and mems and then refuses every task
    for name in ("cpuset.cpus", "cpuset.mems"):
        if _read(sys, pathstr.join(path, name)):
            continue
        value = _read(sys, pathstr.join(parent, name))
        if value:
            _write(sys, "linux.cgroupsPath", pathstr.join(path, name), value)


@handles(EnableControllers)
def enable_controllers(step, ctx):
    sys = ctx.sys
    have = _read(sys, pathstr.join(step.dir, "cgroup.controllers")).split()
    on = set(_read(sys, pathstr.join(step.dir, "cgroup.subtree_control")).split())
    want = [c for c in have if c not in on]
    if not want:
        return
    path = pathstr.join(step.dir, "cgroup.subtree_control")
    try:
        sys.write_file(path, " ".join("+" + c for c in want))
    except OSError:
        # one at a time: a controller that cannot be enabled here (a threaded
        # subtree, a busy parent) must not keep the others off; whatever a
        # limit then misses fails with that limit's own field
        for c in want:
            try:
                sys.write_file(path, "+" + c)
            except OSError:
                pass


@handles(WriteCgroupFile)
def write_cgroup_file(step, ctx):
    sys = ctx.sys
    for name, value in ((step.file, step.value),) + tuple(step.fallback):
        path = pathstr.join(step.dir, name)
        try:
            sys.write_file(path, value)
            return
        except FileNotFoundError:
            continue
        except OSError as e:
            raise ConfigError(step.field, f'failed to write "{value}" to {path}: '
                              f"{oserror_text(e)}") from None
    if not step.optional:
        names = " or ".join([step.file] + [n for n, _ in step.fallback])
        raise ConfigError(step.field, f"not supported by this host's cgroups: {names} does not "
                          f"exist in {step.dir}")


def _int(text, unlimited=-1):
    """A cgroup number; "max" (v2) -> unlimited."""
    return unlimited if text in ("max", "") else int(text)


@handles(SetMemoryLimits)
def set_memory_limits(step, ctx):
    if step.v2:
        _memory_v2(step, ctx.sys)
    else:
        _memory_v1(step, ctx.sys)


def _check_usage(sys, step, usage_file):
    if step.check_before_update and step.limit > 0:
        usage = _int(_read(sys, pathstr.join(step.dir, usage_file)), 0)
        if step.limit < usage:
            raise ConfigError("linux.resources.memory.limit",
                              f"new limit {step.limit} is below the current usage {usage} "
                              "(checkBeforeUpdate)")


def _memory_v1(step, sys):
    f = "linux.resources.memory"
    limit_file = pathstr.join(step.dir, "memory.limit_in_bytes")
    swap_file = pathstr.join(step.dir, "memory.memsw.limit_in_bytes")
    limit, swap = step.limit, step.swap
    swap_exists = _exists(sys, swap_file)
    if limit == -1 and swap == 0 and swap_exists:
        swap = -1      # "unlimited memory" lifts the memory+swap limit as well
    _check_usage(sys, step, "memory.usage_in_bytes")

    def set_limit():
        if not limit:
            return
        try:
            sys.write_file(limit_file, str(limit))
        except OSError as e:
            if e.errno == errno.EBUSY:
                usage = _read(sys, pathstr.join(step.dir, "memory.usage_in_bytes"))
                peak = _read(sys, pathstr.join(step.dir, "memory.max_usage_in_bytes"))
                raise ConfigError(f"{f}.limit", f"unable to set memory limit to {limit} "
                                  f"(current usage: {usage}, peak usage: {peak})") from None
            raise ConfigError(f"{f}.limit", f'failed to write "{limit}" to {limit_file}: '
                              f"{oserror_text(e)}") from None

    def set_swap():
        if not swap:
            return
        if not swap_exists:
            raise ConfigError(f"{f}.swap", "swap limits are not supported by this kernel "
                              "(no memory.memsw.limit_in_bytes: swap accounting is off)")
        _write(sys, f"{f}.swap", swap_file, str(swap))

    # memory+swap may never be below memory: raise memsw first when going up
    if limit and swap and (swap == -1 or _int(_read(sys, limit_file)) < swap):
        set_swap()
        set_limit()
    else:
        set_limit()
        set_swap()


def _memory_v2(step, sys):
    from pyrunc.plan.resources_v2 import swap_v2
    f = "linux.resources.memory"
    _check_usage(sys, step, "memory.current")
    if step.limit:
        _write(sys, f"{f}.limit", pathstr.join(step.dir, "memory.max"),
               "max" if step.limit == -1 else str(step.limit))
    limit = step.limit or _int(_read(sys, pathstr.join(step.dir, "memory.max")))
    try:
        value = swap_v2(step.swap, limit)
    except ValueError as e:
        raise ConfigError(f"{f}.swap", str(e)) from None
    if value is None:
        return
    path = pathstr.join(step.dir, "memory.swap.max")
    try:
        sys.write_file(path, value)
    except FileNotFoundError:
        if value != "max" or step.swap:
            raise ConfigError(f"{f}.swap", "swap limits are not supported by this kernel "
                              "(no memory.swap.max)") from None
    except OSError as e:
        raise ConfigError(f"{f}.swap", f'failed to write "{value}" to {path}: '
                          f"{oserror_text(e)}") from None


@handles(SetCpuMax)
def set_cpu_max(step, ctx):
    sys = ctx.sys
    path = pathstr.join(step.dir, "cpu.max")
    cur = _read(sys, path).split() or ["max", "100000"]
    quota = step.quota or _int(cur[0])
    period = step.period or int(cur[1])
    value = f"{'max' if quota < 0 else quota} {period}"
    field = "linux.resources.cpu." + ("quota" if step.quota else "period")
    _write(sys, field, path, value)


@handles(SetDevicesV1)
def set_devices_v1(step, ctx):
    sys = ctx.sys
    listing = _read(sys, pathstr.join(step.dir, "devices.list"))
    current = dev.parse_devices_list(listing) if listing else None
    for name, rule in dev.v1_writes((step.default_allow, step.rules), current):
        _write(sys, "linux.resources.devices", pathstr.join(step.dir, name), rule)


@handles(LoadDeviceFilter)
def load_device_filter(step, ctx):
    from pyrunc.executor.bpf import install
    try:
        install(ctx.sys, step.dir, step.default_allow, step.rules)
    except OSError as e:
        raise RuntimeFailure(f"cannot load the device filter for cgroup {step.dir}: "
                             f"{oserror_text(e)}") from None


@handles(JoinCgroup)
def join_cgroup(step, ctx):
    pid = ctx.extra["child_pid"]
    for d in step.dirs:
        try:
            ctx.sys.write_file(pathstr.join(d, "cgroup.procs"), str(pid))
        except OSError as e:
            raise RuntimeFailure(f"cannot join cgroup {d}: {oserror_text(e)}") from None


@handles(EnterCgroups)
def enter_cgroups(step, ctx):
    """The child, single-threaded, moves itself (see the step); the init it
    forks inherits the v1 cgroups and is born in the v2 one (namespaces.fork_init)."""
    sys = ctx.sys
    for d in step.v1_dirs:
        try:
            sys.write_file(pathstr.join(d, "tasks"), "0")
        except OSError as e:
            raise RuntimeFailure(f"cannot join cgroup {d}: {oserror_text(e)}") from None
    if step.v2_dir:
        try:
            fd = sys.open(step.v2_dir, sys.O_DIRECTORY | sys.O_CLOEXEC)
        except OSError as e:
            raise RuntimeFailure(f"cannot join cgroup {step.v2_dir}: {oserror_text(e)}") from None
        ctx.extra["cgroup2"] = (step.v2_dir, fd)


@handles(BornInCgroup)
def born_in_cgroup(step, ctx):
    """launch() forked the child into step.dir; where that failed, move it."""
    if not ctx.extra.get("born_in_cgroup"):
        join_cgroup(JoinCgroup((step.dir,)), ctx)
