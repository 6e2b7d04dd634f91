"""Handlers for namespace steps; they run in the child forked by `pyrunc create`."""
import posix

from pyrunc import pathstr
from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor.base import handles
from pyrunc.plan.steps import (CloneInit, CreateNamespaces, CreateUserNamespace, ForkInit,
                               JoinNamespace, OpenEarly, SetTimeOffsets)


def clone_flag(sys, ns_type):
    C = sys.C
    return {"pid": C.CLONE_NEWPID, "network": C.CLONE_NEWNET, "mount": C.CLONE_NEWNS,
            "ipc": C.CLONE_NEWIPC, "uts": C.CLONE_NEWUTS, "user": C.CLONE_NEWUSER,
            "cgroup": C.CLONE_NEWCGROUP, "time": C.CLONE_NEWTIME}[ns_type]


@handles(OpenEarly)
def open_early(step, ctx):
    ctx.extra.setdefault("early_fds", {})[step.path] = _open_ns(step, ctx)


def _open_ns(step, ctx):
    try:
        return ctx.sys.open(step.path, posix.O_RDONLY)
    except OSError as e:
        raise RuntimeFailure(f"failed to open {step.path}: {oserror_text(e)}") from None


@handles(JoinNamespace)
def join_namespace(step, ctx):
    fd = ctx.extra.get("early_fds", {}).pop(step.path, None)
    if fd is None:
        fd = _open_ns(step, ctx)
    try:
        ctx.sys.setns(fd, clone_flag(ctx.sys, step.ns_type))
    except OSError as e:
        raise RuntimeFailure(f"failed to join {step.ns_type} namespace {step.path}: "
                             f"{oserror_text(e)}") from None
    finally:
        ctx.sys.close(fd)


@handles(CreateUserNamespace)
def create_user_namespace(step, ctx):
    unprivileged = posix.geteuid() != 0     # asked before unshare: after it we are "nobody"
    try:
        ctx.sys.unshare(ctx.sys.C.CLONE_NEWUSER)
    except OSError as e:
        raise RuntimeFailure(f"failed to create user namespace: {oserror_text(e)}") from None
    # Only the parent, outside the namespace, may write our maps.  Unprivileged,
    # it can open /proc/<pid>/*_map only while we are dumpable (child_main made
    # us not): for this moment only, as runc does, and only for a non-root caller.
    sync = ctx.extra["sync"]
    if unprivileged:
        ctx.sys.prctl(ctx.sys.C.PR_SET_DUMPABLE, 1)
    sync.send("userns")
    sync.expect("ok")
    if unprivileged:
        ctx.sys.prctl(ctx.sys.C.PR_SET_DUMPABLE, 0)
    try:
        ctx.sys.setresgid(0, 0, 0)
        ctx.sys.setresuid(0, 0, 0)
    except OSError as e:
        raise RuntimeFailure(f"cannot become root in the user namespace (is 0 mapped?): "
                             f"{oserror_text(e)}") from None


def clone_flags(sys, ns_types):
    flags = 0
    for t in ns_types:
        flags |= clone_flag(sys, t)
    return flags


@handles(CreateNamespaces)
def create_namespaces(step, ctx):
    try:
        ctx.sys.unshare(clone_flags(ctx.sys, step.ns_types))
    except OSError as e:
        raise RuntimeFailure(f"failed to create namespaces {','.join(step.ns_types)}: "
                             f"{oserror_text(e)}") from None


@handles(CloneInit)
def clone_init(step, ctx):
    # launch() cloned us, already in our namespaces and cgroup2 directory
    ctx.extra["forked"] = True


@handles(SetTimeOffsets)
def set_time_offsets(step, ctx):
    data = "".join(f"{clock} {secs} {nsecs}\n" for clock, secs, nsecs in step.offsets)
    fd = ctx.sys.open("/proc/self/timens_offsets", posix.O_WRONLY)
    try:
        ctx.sys.write(fd, data.encode())
    except OSError as e:
        raise RuntimeFailure(f"failed to set time offsets: {oserror_text(e)}") from None
    finally:
        ctx.sys.close(fd)


@handles(ForkInit)
def fork_init(step, ctx):
    pid = _fork_into_cgroup(ctx)
    if pid:
        # the intermediate: report the init's pid (in our namespace) and vanish
        ctx.extra["sync"].send("pid", pid=pid)
        posix._exit(0)
    ctx.extra["forked"] = True


def _fork_into_cgroup(ctx):
    """fork() for ForkInit: the child born in EnterCgroups' v2 dir, if any."""
    sys = ctx.sys
    v2_dir, fd = ctx.extra.pop("cgroup2", (None, -1))
    if v2_dir is None:
        return sys.fork()
    try:
        try:
            return sys.clone_fork(0, fd)
        except OSError:
            pass   # clone3 or CLONE_INTO_CGROUP unknown here: move, then fork
        try:
            sys.write_file(pathstr.join(v2_dir, "cgroup.procs"), "0")
        except OSError as e:
            raise RuntimeFailure(f"cannot join cgroup {v2_dir}: {oserror_text(e)}") from None
        return sys.fork()
    finally:
        sys.close(fd)   # in the init and in the intermediate


def write_id_maps(pid, uid_mappings, gid_mappings):
    """Parent side of CreateUserNamespace: uid_map, then gid_map.

    Root writes them itself.  An unprivileged caller (rootless) may write only
    a map of its own id, and gid_map only once setgroups is denied; any other
    map goes through newuidmap/newgidmap (see pyrunc/rootless.py).
    """
    from pyrunc import rootless
    privileged = posix.geteuid() == 0
    for name, maps, own, helper in (("uid_map", uid_mappings, posix.geteuid(), "newuidmap"),
                                    ("gid_map", gid_mappings, posix.getegid(), "newgidmap")):
        if not maps:
            continue
        if not privileged and not rootless.maps_only_own_id(maps, own):
            rootless.run_helper(helper, pid, maps, name)
            continue
        if name == "gid_map" and not privileged:
            rootless.deny_setgroups(pid)
        data = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(data)
        except OSError as e:
            raise RuntimeFailure(f"failed to write {name}: {oserror_text(e)}") from None
