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
import posixpath

from pyrunc.cgroups.host import join_under
from pyrunc.errors import ConfigError
from pyrunc.plan.resources import Target, plan_resources
from pyrunc.plan.steps import CreateCgroup, EnableControllers, JoinCgroup

FIELD = "linux.cgroupsPath"


def plan_cgroups(config, cid, *, systemd=False, host=None):
    """The Phase.CGROUPS steps for config: create, limit, then join the child."""
    if host is None:
        from pyrunc.cgroups.host import probe
        host = probe()
    path = config.linux.cgroups_path
    if systemd:
        _refuse_systemd(path, host)
    places = resolve(path, cid, host)
    steps = []
    for keys, dir_, base in places:
        steps.append(CreateCgroup(dir_, base, keys, cpuset="cpuset" in keys))
        if host.unified:
            steps += [EnableControllers(d) for d in _ancestors(host.v2_mount, dir_)]
    dirs = {k: d for keys, d, _ in places for k in keys}
    target = Target(dirs=dirs, v2=host.unified, v2_controllers=host.v2_controllers,
                    hugepage_sizes=host.hugepage_sizes)
    steps += plan_resources(config.linux.resources or {}, target)
    steps.append(JoinCgroup(tuple(d for _, d, _ in places)))
    return steps


def cgroup_dirs(steps):
    """{controller, "name=systemd" or "unified": absolute dir} of a plan's cgroups."""
    return {k: s.dir for s in steps if isinstance(s, CreateCgroup) for k in s.keys}


def join_steps(dirs):
    """The steps that put an exec'd process (ctx.extra["child_pid"]) into the
    container's cgroups, from the {key: dir} dict state.json saved."""
    unique = tuple(dict.fromkeys((dirs or {}).values()))
    return [JoinCgroup(unique)] if unique else []


def clean(path):
    """Lexically clean a cgroupsPath; a relative one cannot climb out with "..". """
    if path.startswith("/"):
        return posixpath.normpath(path)
    return posixpath.normpath("/" + path).lstrip("/") or "."


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
            base = posixpath.dirname(host.v2_own_dir()) if host.v2_own_dir() != host.v2_mount \
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
    out, d = [], posixpath.dirname(dir_)
    while d.startswith(top) and len(d) >= len(top):
        out.append(d)
        if d == top:
            break
        d = posixpath.dirname(d)
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
