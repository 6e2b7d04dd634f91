"""Handlers for the process steps: what the init does to itself before execve.

The identity switch (bounding set, user, capabilities) is in identity.py,
imported from here so that loading this module registers every process step.
Everything goes through ctx.sys.  Errors are RuntimeFailure with one line in
runc's words where clients read them ("no such file or directory",
"permission denied", "executable file not found in $PATH").  Warnings (caps
runc would also ignore) are appended to ctx.extra["warnings"]; the caller
decides where they are logged.
"""
import errno
import posix
import stat as _stat

from pyrunc import pathstr
from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor import identity, paths  # noqa: F401 - identity registers its handlers
from pyrunc.executor.base import handles
from pyrunc.plan.process import go_quote
from pyrunc.plan.steps import (
    BringUpLoopback, Chdir, CloseFds, Exec, MakeCwd, ResolveExecutable, SetDomainname,
    SetHostname, SetNoNewPrivs, SetOomScoreAdj, SetRlimit, WriteSysctl,
)


def _fail(what, err):
    return RuntimeFailure(f"{what}: {oserror_text(err)}")


# --- namespace-wide settings -------------------------------------------------

@handles(SetHostname)
def set_hostname(step, ctx):
    try:
        ctx.sys.sethostname(step.name)
    except OSError as e:
        raise _fail("sethostname", e) from None


@handles(SetDomainname)
def set_domainname(step, ctx):
    try:
        ctx.sys.setdomainname(step.name)
    except OSError as e:
        raise _fail("setdomainname", e) from None


def open_procfs(sys, path):
    """O_PATH fd of a directory that must be on procfs (CVE-2025-52881: a /proc
    redirected by a mount race must not receive our writes)."""
    return _verified_procfs(sys, path, sys.open(path, sys.O_PATH | sys.O_DIRECTORY))


def _verified_procfs(sys, path, fd):
    try:
        magic = sys.fstatfs_magic(fd)
    except OSError:
        sys.close(fd)
        raise
    if magic != sys.C.PROC_SUPER_MAGIC:
        sys.close(fd)
        raise RuntimeFailure(f"{path} is not on procfs: refusing to write to it")
    return fd


def write_proc(sys, base, rel, data, symlinks=False, base_fd=None):
    """Write data to base/rel, resolved below a verified procfs fd: no magic
    links, no mount crossing, no "..", and no symlinks unless allowed.
    base_fd: base opened earlier (OpenEarly), left open."""
    C = sys.C
    resolve = C.RESOLVE_NO_MAGICLINKS | C.RESOLVE_NO_XDEV | C.RESOLVE_BENEATH
    if not symlinks:
        resolve |= C.RESOLVE_NO_SYMLINKS
    shown = f"{base}/{rel}"
    dirfd = open_procfs(sys, base) if base_fd is None else _verified_procfs(sys, base, base_fd)
    try:
        try:
            fd = sys.openat2(dirfd, rel, posix.O_WRONLY, 0, resolve)
        except OSError as e:
            raise _fail(f"open {shown}", e) from None
        try:
            sys.write(fd, data)
        except OSError as e:
            raise _fail(f"write {shown}", e) from None
        finally:
            sys.close(fd)
    finally:
        if base_fd is None:
            sys.close(dirfd)


@handles(WriteSysctl)
def write_sysctl(step, ctx):
    # runc turns every dot into a slash, including dots in interface names
    write_proc(ctx.sys, "/proc/sys", step.key.replace(".", "/"), step.value.encode())


@handles(BringUpLoopback)
def bring_up_loopback(step, ctx):
    try:
        ctx.sys.link_up("lo")
    except OSError as e:
        raise _fail("bring up lo", e) from None


@handles(SetOomScoreAdj)
def set_oom_score_adj(step, ctx):
    try:
        # "self" is a plain symlink inside procfs, the one we must follow
        # an exec spawned by pyrunc-init sets it before joining the container's
        # mount namespace, whose /proc does not show it: through the host's /proc
        write_proc(ctx.sys, "/proc", "self/oom_score_adj", str(step.value).encode(),
                   symlinks=True, base_fd=ctx.extra.get("early_fds", {}).get("/proc"))
    except RuntimeFailure as e:
        text = str(e)
        if text.endswith("permission denied"):
            text += " (setting it below the current value needs CAP_SYS_RESOURCE)"
        raise RuntimeFailure(f"process.oomScoreAdj {step.value}: {text}") from None


@handles(SetRlimit)
def set_rlimit(step, ctx):
    try:
        ctx.sys.setrlimit(getattr(ctx.sys.C, step.type), step.soft, step.hard)
    except OSError as e:
        raise RuntimeFailure(f"process.rlimits: error setting rlimit type {step.type} "
                             f"(soft {step.soft}, hard {step.hard}): {oserror_text(e)}") from None


# --- working directory -------------------------------------------------------

@handles(MakeCwd)
def make_cwd(step, ctx):
    """mkdir -p inside the rootfs (ctx.root_fd; "/" when already inside it),
    walked through fds so neither symlinks nor /proc/self/fd/N lead outside."""
    sys = ctx.sys
    try:
        rootfd = ctx.root_fd if ctx.root_fd >= 0 else sys.open("/", sys.O_PATH | sys.O_DIRECTORY)
        try:
            sys.close(paths.mkdir_all_in_root(sys, rootfd, step.cwd))
        finally:
            if rootfd != ctx.root_fd:
                sys.close(rootfd)
    except OSError as e:
        raise _fail(f"mkdir {step.cwd}", e) from None


@handles(Chdir)
def chdir(step, ctx):
    sys = ctx.sys
    if step.after_user and not ctx.extra.pop("cwd_denied", False):
        return  # the first attempt, as root, already got there
    try:
        rootfd = sys.open("/", sys.O_PATH | sys.O_DIRECTORY)
        try:
            fd = paths.open_in_root(sys, rootfd, step.cwd, sys.O_PATH | sys.O_DIRECTORY)
            try:
                sys.fchdir(fd)
            finally:
                sys.close(fd)
        finally:
            sys.close(rootfd)
    except OSError as e:
        if not step.after_user and e.errno in (errno.EACCES, errno.EPERM):
            # maybe root may not enter but the container user may (root-squashed
            # NFS, a directory owned by an unmapped id): try again after SetUser
            ctx.extra["cwd_denied"] = True
            return
        raise RuntimeFailure(f"chdir to cwd ({go_quote(step.cwd)}) set in config.json failed: "
                             f"{oserror_text(e)}") from None
    verify_cwd(sys, step.cwd)


def verify_cwd(sys, cwd):
    """CVE-2024-21626: a cwd reached through a leaked host fd lies outside our
    root, and the kernel reports it as unreachable."""
    try:
        where = sys.getcwd()
    except OSError:
        where = None
    if not where or not where.startswith("/"):
        raise RuntimeFailure(f"cwd {go_quote(cwd)} is outside the container's root: "
                             "refusing to run (possible container breakout)")


# --- the program ---------------------------------------------------------------

@handles(ResolveExecutable)
def resolve_executable(step, ctx):
    ctx.exec_path = look_path(ctx.sys, step.arg0, step.path_env)


def look_path(sys, name, path_env):
    """Find name the way Go 1.19's exec.LookPath does (runc 1.1.5 is built with it)."""
    quoted = go_quote(name)
    if "/" in name:
        problem = _not_executable(sys, name)
        if problem:
            raise RuntimeFailure(f"exec: {quoted}: {problem}")
        return name
    for d in path_env.split(":") if path_env else ():
        candidate = pathstr.normpath(pathstr.join(d or ".", name))
        if _not_executable(sys, candidate) is None:
            if not candidate.startswith("/"):
                raise RuntimeFailure(f"exec: {quoted}: cannot run executable found "
                                     "relative to current directory")
            return candidate
    raise RuntimeFailure(f"exec: {quoted}: executable file not found in $PATH")


def _not_executable(sys, path):
    """None if path is an executable file, else the reason in Go's words."""
    try:
        st = sys.stat(path)
    except OSError as e:
        return f"stat {path}: {oserror_text(e)}"
    if _stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        return "permission denied"
    return None


@handles(SetNoNewPrivs)
def set_no_new_privs(step, ctx):
    try:
        ctx.sys.prctl(ctx.sys.C.PR_SET_NO_NEW_PRIVS, 1)
    except OSError as e:
        raise _fail("prctl(SET_NO_NEW_PRIVS)", e) from None


@handles(CloseFds)
def close_fds(step, ctx):
    # Python opens everything non-inheritable: the kept fds must survive execve
    for fd in range(step.keep_up_to):
        try:
            ctx.sys.set_inheritable(fd, True)
        except OSError as e:
            if e.errno != errno.EBADF:
                raise _fail(f"fd {fd}", e) from None
    # CVE-2024-21626: no other fd (host dirs, our sockets) may reach the program
    ctx.sys.close_range_cloexec(step.keep_up_to)


@handles(Exec)
def exec_program(step, ctx):
    path = ctx.exec_path or step.args[0]
    env = with_home(step.env, ctx.extra.get("home", "/"))
    try:
        # PR_SET_DUMPABLE stays 0 up to here (we never raise it): the kernel
        # decides it afresh for the new program
        ctx.sys.execve(path, list(step.args), env)
    except OSError as e:
        raise _fail(f"exec {path}", e) from None


def with_home(env, home):
    """env as a dict for execve, with HOME filled in when missing or empty (runc)."""
    out = dict(entry.split("=", 1) for entry in env)
    if not out.get("HOME"):
        out["HOME"] = home
    return out
