"""Handlers for the switch of identity: bounding set, ids, capabilities.

The order is the kernel's, and runc 1.1's: drop the bounding set while still
root (PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set), switch ids with
PR_SET_KEEPCAPS so the permitted set survives, then set effective, permitted
and inheritable exactly as configured and raise the ambient ones last.
"""
import errno

from pyrunc import caps
from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor.base import handles
from pyrunc.plan.steps import DropBoundingSet, SetCapabilities, SetUser


def warn(ctx, text, level="warning"):
    """Queue a message for the runtime to log (the init has no log of its own)."""
    ctx.extra.setdefault("warnings", []).append([level, text])


def _fail(what, err):
    return RuntimeFailure(f"{what}: {oserror_text(err)}")


def _usable_caps(ctx, names):
    numbers, ignored = caps.split_known(names)
    seen = ctx.extra.setdefault("ignored_caps", set())
    fresh = [n for n in ignored if n not in seen]
    seen.update(fresh)
    text = caps.unknown_warning(fresh)
    if text:
        warn(ctx, text)
    return numbers


@handles(DropBoundingSet)
def drop_bounding_set(step, ctx):
    keep = set(_usable_caps(ctx, step.keep))
    for cap in range(caps.last_cap() + 1):
        if cap in keep:
            continue
        try:
            ctx.sys.capbset_drop(cap)
        except OSError as e:
            if e.errno == errno.EINVAL:
                continue  # the kernel does not have this one
            if e.errno == errno.EPERM:
                return  # no CAP_SETPCAP: runc leaves the bounding set alone then too
            raise _fail("unable to apply bounding set", e) from None


@handles(SetUser)
def set_user(step, ctx):
    sys = ctx.sys
    # read before the switch: /etc/passwd may not be readable by the user
    ctx.extra["home"] = home_of(sys, step.uid)
    fix_stdio_owner(sys, step.uid)
    pdeathsig = sys.get_pdeathsig()
    try:
        # keep the permitted set across setresuid: SetCapabilities sets it exactly
        sys.prctl(sys.C.PR_SET_KEEPCAPS, 1)
        if _setgroups_allowed(ctx):
            _call("setgroups", sys.setgroups, list(step.additional_gids))
        _call("setresgid", sys.setresgid, step.gid, step.gid, step.gid)
        _call("setresuid", sys.setresuid, step.uid, step.uid, step.uid)
        sys.prctl(sys.C.PR_SET_KEEPCAPS, 0)
        if pdeathsig:
            # changing ids clears the parent-death signal the init relies on
            sys.prctl(sys.C.PR_SET_PDEATHSIG, pdeathsig)
    except OSError as e:
        raise _fail("unable to setup user", e) from None
    sys.umask(0o022 if step.umask is None else step.umask)


def _call(name, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        raise RuntimeFailure(f"unable to setup user: {name}: {oserror_text(e)}") from None


def _setgroups_allowed(ctx):
    # in a user namespace whose setgroups is "deny" the call can only fail
    if not ctx.userns:
        return True
    # an exec spawned by pyrunc-init asks before it is in the container's pid
    # namespace, whose /proc does not show it: through the host's (OpenEarly)
    proc = ctx.extra.get("early_fds", {}).get("/proc")
    try:
        data = (ctx.sys.read_file("/proc/self/setgroups") if proc is None
                else ctx.sys.read_file("self/setgroups", dir_fd=proc))
    except OSError:
        return True
    return (data or b"").strip() != b"deny"


def home_of(sys, uid):
    """HOME for uid from the container's /etc/passwd, "/" without an entry."""
    try:
        data = sys.read_file("/etc/passwd")
    except OSError:
        data = None
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) < 3 or line.startswith("#"):
            continue
        try:
            if int(fields[2]) != uid:
                continue
        except ValueError:
            continue
        return fields[5] if len(fields) > 5 else ""
    return "/"


def fix_stdio_owner(sys, uid):
    """Give fds 0-2 to the container user so it can reopen them (/dev/stdout,
    a tty); runc does the same.  /dev/null and refusals are left alone."""
    try:
        null_rdev = sys.stat("/dev/null").st_rdev
    except OSError as e:
        raise _fail("stat /dev/null", e) from None
    for fd in (0, 1, 2):
        try:
            st = sys.fstat(fd)
        except OSError as e:
            raise _fail(f"fstat fd {fd}", e) from None
        if st.st_uid == uid or st.st_rdev == null_rdev:
            continue
        try:
            sys.fchown(fd, uid, st.st_gid)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                raise _fail(f"chown fd {fd}", e) from None


@handles(SetCapabilities)
def set_capabilities(step, ctx):
    sys = ctx.sys
    eff, prm, inh, amb = (_usable_caps(ctx, s) for s in
                          (step.effective, step.permitted, step.inheritable, step.ambient))

    def mask(numbers):
        return sum(1 << n for n in set(numbers))
    try:
        # all three sets exactly as configured: inheritable stays empty unless
        # asked for (CVE-2022-29162)
        sys.capset(mask(eff), mask(prm), mask(inh))
    except OSError as e:
        raise _fail("unable to apply caps", e) from None
    try:
        sys.prctl(sys.C.PR_CAP_AMBIENT, sys.C.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: kernel without ambient caps
            raise _fail("unable to clear ambient caps", e) from None
        return
    refused = []
    for cap in amb:
        try:
            sys.prctl(sys.C.PR_CAP_AMBIENT, sys.C.PR_CAP_AMBIENT_RAISE, cap)
        except OSError:
            refused.append(caps.name_of(cap))
    if refused:
        # runc ignores this too (its own `runc spec` asks for ambient caps
        # without inheritable ones): the kernel only raises caps that are
        # both permitted and inheritable
        warn(ctx, f"ambient capabilities not raised (each must be permitted and inheritable): "
                  f"[{' '.join(refused)}]", level="debug")
