"""Running without root: who counts as rootless, where their state lives,
how their id maps get written, which cgroups they may use.

Rules, as runc 1.1 has them unless said otherwise:
- rootless: the effective uid is not 0, or it is 0 inside a user namespace
  (root there owns no host cgroups);
- state root: /run/pyrunc for real root; $XDG_RUNTIME_DIR/pyrunc when that is
  set, absolute and non-empty and we are not root (or are root of a user
  namespace with $USER other than "root").  Where runc would fall back to
  /run/runc and fail with "permission denied", a non-root caller gets
  /run/user/<euid>/pyrunc when that login directory is its own, else
  /tmp/pyrunc-<euid>.  Every non-root state root is made 0700 and refused
  unless it is a directory we own that nobody else can write: in the shared
  /tmp another user could otherwise plant state files (and pids) for us;
- id maps: an unprivileged writer may map only its own id, once, size 1, and
  for gid_map only after "deny" went to /proc/<pid>/setgroups; anything else
  goes through the setuid newuidmap/newgidmap (package uidmap), which check
  /etc/subuid and /etc/subgid;
- cgroups: with no linux.cgroupsPath a cgroup we cannot create is skipped
  (a delegated one is used); an explicit path must work; limits on a skipped
  controller fail; device rules are never applied (plan/cgroups.py).

Imported by the CLI on every command: the standard library only, nothing heavy.
"""
import posix
import stat

from pyrunc import pathstr
from pyrunc.errors import RuntimeFailure

NAME = "pyrunc"
_FULL_MAP = ("0", "0", "4294967295")


def in_user_namespace(uid_map="/proc/self/uid_map"):
    """Whether this process runs in a user namespace other than the initial one."""
    from pyrunc.state import read_bytes   # loaded by every command: no builtin open()
    try:
        lines = read_bytes(uid_map).decode().split("\n")
    except (OSError, ValueError):
        return False
    fields = [ln.split() for ln in lines if ln.strip()]
    return fields != [list(_FULL_MAP)]


def is_rootless():
    """Whether cgroups and ids must be handled as an unprivileged user would."""
    return posix.geteuid() != 0 or in_user_namespace()


# --- the state root ----------------------------------------------------------------

def _xdg_honoured(env, euid, userns):
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if not xdg.startswith("/"):
        return None          # unset, empty, or relative (which XDG says to ignore)
    if euid != 0:
        return xdg
    # root of a user namespace (rootless podman's runtime): unless it says it is root
    if userns and env.get("USER", "") != "root":
        return xdg
    return None


def state_root_path(env=None, euid=None, userns=None, run_user="/run/user"):
    """(path, private) for the default --root; private: a non-root dir to make and vet."""
    if env is None:
        import os   # rootless callers only: root's create and run never get here
        env = os.environ
    euid = posix.geteuid() if euid is None else euid
    if euid == 0 and userns is None:
        userns = in_user_namespace()
    xdg = _xdg_honoured(env, euid, bool(userns))
    if xdg:
        return pathstr.join(xdg, NAME), True
    if euid == 0:
        return f"/run/{NAME}", False
    login_dir = pathstr.join(run_user, str(euid))
    try:
        st = posix.stat(login_dir)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == euid and not st.st_mode & 0o077:
            return pathstr.join(login_dir, NAME), True
    except OSError:
        pass
    return f"/tmp/{NAME}-{euid}", True


def state_root(env=None):
    """The default --root, created and vetted when it is a non-root one."""
    path, private = state_root_path(env)
    if private:
        ensure_private_dir(path, posix.geteuid())
    return path


def ensure_private_dir(path, euid):
    """Make `path` (0700 + sticky, as runc does so that tmp cleaners leave it) or vet
    an existing one: our own real directory, writable by nobody else."""
    try:
        try:
            posix.mkdir(path, 0o700)
        except FileNotFoundError:
            pathstr.makedirs(path, 0o700)   # a missing $XDG_RUNTIME_DIR too, as runc's MkdirAll
        posix.chmod(path, 0o1700)
    except FileExistsError:
        pass
    except OSError as e:
        from pyrunc.errors import oserror_text
        raise RuntimeFailure(f"cannot create the state directory {path}: "
                             f"{oserror_text(e)}") from None
    st = posix.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RuntimeFailure(f"state directory {path} is not a directory: refusing to use "
                             "it (pass --root)")
    if st.st_uid != euid:
        raise RuntimeFailure(f"state directory {path} belongs to uid {st.st_uid}, not "
                             f"{euid}: refusing to use it (pass --root)")
    if st.st_mode & 0o022:
        raise RuntimeFailure(f"state directory {path} is writable by other users: "
                             "refusing to use it (pass --root)")


# --- id maps ---------------------------------------------------------------------

def maps_only_own_id(maps, own_id):
    """The one mapping the kernel lets an unprivileged process write itself."""
    return len(maps) == 1 and maps[0].host_id == own_id and maps[0].size == 1


def find_helper(name, path=None):
    """Absolute path of newuidmap/newgidmap, or None."""
    if path is None:
        import os   # only to write id maps without root
        path = os.environ.get("PATH", "")
    dirs = path.split(":")
    for d in [d for d in dirs if d.startswith("/")] + ["/usr/bin", "/bin", "/usr/sbin"]:
        candidate = pathstr.join(d, name)
        if pathstr.isfile(candidate) and posix.access(candidate, posix.X_OK):
            return candidate
    return None


def helper_argv(helper, pid, maps):
    """newuidmap/newgidmap's command line: the pid, then triples."""
    argv = [helper, str(pid)]
    for m in maps:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    return argv


def run_helper(name, pid, maps, what):
    """Write a map through newuidmap/newgidmap; RuntimeFailure naming why it could not."""
    helper = find_helper(name)
    if helper is None:
        raise RuntimeFailure(f"failed to write {what}: as an unprivileged user only your own "
                             f"id can be mapped without {name} (install the uidmap package "
                             "and give the user ranges in /etc/subuid and /etc/subgid)")
    import subprocess
    try:
        r = subprocess.run(helper_argv(helper, pid, maps), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeFailure(f"failed to write {what}: {name}: {e}") from None
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        detail = lines[-1] if lines else f"exit status {r.returncode}"
        if not detail.startswith(name + ":"):
            detail = f"{name}: {detail}"
        raise RuntimeFailure(f"failed to write {what}: {detail}")


def deny_setgroups(pid):
    """Before an unprivileged gid_map write: the kernel demands setgroups be off."""
    try:
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
    except FileNotFoundError:
        pass     # kernels before 3.19 have no such file and no such rule
    except OSError as e:
        from pyrunc.errors import oserror_text
        raise RuntimeFailure(f"failed to write /proc/{pid}/setgroups: "
                             f"{oserror_text(e)}") from None


# --- cgroups ---------------------------------------------------------------------

def cgroup_usable(dir_, base):
    """Whether we may put a process in cgroup dir_ (to be made below existing base):
    an existing dir_ needs its cgroup.procs writable, a missing one its nearest
    existing ancestor writable (a delegated subtree)."""
    d = dir_
    while not pathstr.isdir(d):
        if len(d) <= len(base) or d == pathstr.dirname(d):
            return False
        d = pathstr.dirname(d)
    if d == dir_:
        return _writable(pathstr.join(d, "cgroup.procs"))
    return _writable(d)


def _writable(path):
    try:
        return posix.access(path, posix.W_OK, effective_ids=True)
    except NotImplementedError:
        return posix.access(path, posix.W_OK)
