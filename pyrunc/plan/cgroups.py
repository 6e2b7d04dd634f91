"""config -> the steps that put a container in its cgroups (Phase.CGROUPS).

Where, as runc 1.1 decides it for its cgroupfs driver:
- linux.cgroupsPath absolute: that path below each hierarchy's root;
- relative: below this process's own cgroup in each hierarchy (on a
  cgroup-v2-only host below its parent, since a cgroup that holds processes
  cannot give controllers to children);
- absent: "<id>", relative.
On a v1 host the container gets a directory in every mounted hierarchy runc
knows (co-mounted controllers share one), in name=systemd, and in the cgroup2
"unified" tree of a hybrid host.  `slice:prefix:name` paths belong to the
systemd driver, which pyrunc does not have.

plan_cgroups is pure: the host's layout comes in as `host`
(pyrunc.cgroups.host.probe() when not given).
"""

from pyrunc import pathstr
from pyrunc.cgroups.host import join_under
from pyrunc.errors import ConfigError
from pyrunc.plan.resources import Target, plan_resources
from pyrunc.plan.steps import (CreateCgroup, EnableControllers, JoinCgroup, LoadDeviceFilter,
                               SetDevicesV1)

FIELD = "linux.cgroupsPath"


def plan_cgroups(config, cid, *, systemd=False, host=None, rootless=None, usable=None):
    """The Phase.CGROUPS steps for config: create, limit, then join the child.

    rootless (None: pyrunc.rootless.is_rootless()): without a cgroupsPath the
    cgroups we may not create are left out, as runc does; usable(dir, base)
    decides (default pyrunc.rootless.cgroup_usable).
    """
    if host is None:
        from pyrunc.cgroups.host import probe
        host = probe()
    path = config.linux.cgroups_path
    if systemd:
        _refuse_systemd(path, host)
    places = resolve(path, cid, host)
    if rootless is None:
        from pyrunc.rootless import is_rootless
        rootless = is_rootless()
    skipped = {}
    if rootless and not path:
        # runc's rule: without a cgroupsPath, a cgroup we may not create (one
        # not delegated to us) is skipped; an explicit path must work as asked
        if usable is None:
            from pyrunc.rootless import cgroup_usable as usable
        skipped = {d: keys for keys, d, base in places if not usable(d, base)}
    kept = [p for p in places if p[1] not in skipped]
    steps = []
    for keys, dir_, base in kept:
        steps.append(CreateCgroup(dir_, base, keys, cpuset="cpuset" in keys))
        if host.unified:
            steps += [EnableControllers(d) for d in _ancestors(host.v2_mount, dir_)]
    # every place, skipped ones too: a limit meant for one must fail, not vanish
    dirs = {k: d for keys, d, _ in places for k in keys}
    target = Target(dirs=dirs, v2=host.unified, v2_controllers=host.v2_controllers,
                    hugepage_sizes=host.hugepage_sizes)
    limits = plan_resources(config.linux.resources or {}, target)
    if rootless:
        limits = _rootless_limits(limits, skipped)
    steps += limits
    if kept:
        steps.append(JoinCgroup(tuple(d for _, d, _ in kept)))
    return steps


def _rootless_limits(steps, skipped):
    """Device rules go: unprivileged they cannot be set (runc ignores them too),
    and in a user namespace no device node can be made anyway.  A limit on a
    skipped cgroup fails, as runc's does."""
    out = []
    for s in steps:
        if isinstance(s, (SetDevicesV1, LoadDeviceFilter)):
            continue
        if s.dir in skipped:
            field = getattr(s, "field", "") or ""
            what = field.split(".")[2] if field.count(".") >= 2 else \
                "/".join(k for k in skipped[s.dir] if k != "unified") or "cgroup"
            raise ConfigError(field or "linux.resources",
                              f"cannot set {what} limit: container could not join or create "
                              f"cgroup {s.dir} (rootless: permission denied)")
        out.append(s)
    return out


def cgroup_dirs(steps):
    """{controller, "name=systemd" or "unified": absolute dir} of a plan's cgroups."""
    return {k: s.dir for s in steps if isinstance(s, CreateCgroup) for k in s.keys}


def join_steps(dirs):
    """The steps that put an exec'd process (ctx.extra["child_pid"]) into the
    container's cgroups, from the {key: dir} dict state.json saved."""
    unique = tuple(dict.fromkeys((dirs or {}).values()))
    return [JoinCgroup(unique)] if unique else []


def enter_from_child(steps, v2_mount):
    """steps (a whole create plan) with JoinCgroup replaced by the child's
    EnterCgroups, first in its NAMESPACES phase, where that can work (`exec`:
    plan/execspawn.py, where the runtime's fork is born in the v2 cgroup).

    JoinCgroup has the runtime write the child's pid into each cgroup.procs: a
    move that waits milliseconds for the kernel (see EnterCgroups).  The child
    can do without the wait when it forks the init (ForkInit), and it may when
    it has no user namespace yet to lose the rights to the host's cgroupfs in.
    A new or joined cgroup namespace then comes after ForkInit: its root is the
    cgroup the process that makes it is in, and only the init is born in the
    v2 one (a joined one is opened early: the path is the host's).
    """
    from pyrunc.plan.steps import (CreateNamespaces, CreateUserNamespace, EnterCgroups, ForkInit,
                                   JoinNamespace, OpenEarly, Phase, SetCpuAffinity)
    join = next((s for s in steps if isinstance(s, JoinCgroup)), None)
    if join is None or not any(isinstance(s, ForkInit) for s in steps):
        return list(steps)
    if any(isinstance(s, (CreateUserNamespace, SetCpuAffinity))
           or (isinstance(s, JoinNamespace) and s.ns_type == "user") for s in steps):
        return list(steps)
    prefix = v2_mount.rstrip("/") + "/" if v2_mount else None
    v2 = [d for d in join.dirs if prefix and (d + "/").startswith(prefix)]
    out, cgroupns = [], []
    for s in steps:
        if s is join:
            continue
        if v2 and isinstance(s, JoinNamespace) and s.ns_type == "cgroup":
            cgroupns.append(s)
            continue
        if v2 and isinstance(s, CreateNamespaces) and "cgroup" in s.ns_types:
            cgroupns.append(CreateNamespaces(("cgroup",)))
            rest = tuple(t for t in s.ns_types if t != "cgroup")
            if rest:
                out.append(CreateNamespaces(rest))
            continue
        out.append(s)
        if isinstance(s, ForkInit):
            out += cgroupns
    first = next(i for i, s in enumerate(out) if s.phase is Phase.NAMESPACES)
    out[first:first] = [EnterCgroups(tuple(d for d in join.dirs if d not in v2),
                                     v2[0] if v2 else "")]
    out[first + 1:first + 1] = [OpenEarly(s.path) for s in cgroupns
                                if isinstance(s, JoinNamespace)]
    return out


def clean(path):
    """Lexically clean a cgroupsPath; a relative one cannot climb out with "..". """
    if path.startswith("/"):
        return pathstr.normpath(path)
    return pathstr.normpath("/" + path).lstrip("/") or "."


def resolve(path, cid, host):
    """[(state keys, dir, existing base dir)] for every hierarchy the container joins."""
    inner = clean(path) if path else cid
    absolute = inner.startswith("/")
    if inner in ("/", "."):
        raise ConfigError(FIELD, f"{path!r} names the parent cgroup itself, not a cgroup "
                          "for the container")
    places = []
    if host.unified:
        if absolute:
            base = host.v2_mount
        else:
            base = pathstr.dirname(host.v2_own_dir()) if host.v2_own_dir() != host.v2_mount \
                else host.v2_mount
        places.append((("unified",), join_under(base, inner), base))
        return places
    if not host.v1:
        raise ConfigError(FIELD, "no cgroup hierarchy is mounted on this host "
                          "(/sys/fs/cgroup: no such file or directory)")
    if host.hierarchy("devices") is None:
        # without it nothing would restrict device access: runc refuses too
        raise ConfigError("linux.resources.devices", "the devices cgroup controller is not "
                          "mounted on this host")
    for h in host.v1:
        base = h.mountpoint if absolute else h.own_dir()
        places.append((h.controllers, join_under(base, inner), base))
    if host.v2_mount:
        base = host.v2_mount if absolute else host.v2_own_dir()
        places.append((("unified",), join_under(base, inner), base))
    return places


def _ancestors(top, dir_):
    """top, ..., parent of dir_: the cgroups whose subtree_control dir_ depends on."""
    out, d = [], pathstr.dirname(dir_)
    while d.startswith(top) and len(d) >= len(top):
        out.append(d)
        if d == top:
            break
        d = pathstr.dirname(d)
    return out[::-1]


def _refuse_systemd(path, host):
    if path and (path.count(":") != 2 or "/" in path):
        raise ConfigError(FIELD, f'expected cgroupsPath to be of format "slice:prefix:name" '
                          f"for systemd cgroups, got {path!r} instead")
    if not host.systemd:
        raise ConfigError(FIELD, "the systemd cgroup driver (--systemd-cgroup) needs a running "
                          "systemd: /run/systemd/private: no such file or directory")
    raise ConfigError(FIELD, "the systemd cgroup driver (--systemd-cgroup) is not supported "
                      "by pyrunc; run without --systemd-cgroup")
