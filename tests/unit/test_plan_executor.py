"""What `pyrunc plan` shows is what the executor does: each real config's plan
is carried out, phase by phase as create and its child would, against a
recording double, and every step's values are found in the syscalls made
while that step ran.

The steps are seen through run_steps' step hook (ctx.extra["fault_at"], the
one fault injection uses), so the test watches the executor's own loop.
RUNTIME_HOOKS (run by launch in the parent) and later phases are not carried
out here.
"""
import os
import posixpath
import stat
from types import SimpleNamespace

import pytest

from pyrunc.executor.base import Context, run_steps
from pyrunc.plan.steps import Phase
from tests.doubles import RecordingSys
from tests.unit.test_plan_real_configs import NAMES, ROOTFS, fake_host, load_config  # noqa: F401

C = RecordingSys.C
NULL = os.makedev(1, 3)
CHILD = 4242
EXECUTED = (Phase.CGROUPS, Phase.NAMESPACES, Phase.ROOTFS, Phase.CONTAINER, Phase.START)


class PlanSys(RecordingSys):
    """The recording double plus just enough of a filesystem for a whole plan:
    fds know their paths, mknod makes nodes, /dev/null is the real one,
    /proc is procfs, anything else looked up is an executable file."""

    def __init__(self, rootfs):
        super().__init__()
        self.rootfs = rootfs
        self.fds, self.nodes, self.files = {}, {}, {}
        self.cwd = "/"

    def path(self, fd):
        return self.fds.get(fd, "?")

    def _at(self, dir_fd, name):
        return posixpath.normpath(posixpath.join(self.fds.get(dir_fd, "/"), name))

    def _inside(self, path):
        # after pivot_root the container sees its paths from "/"
        return path[len(self.rootfs):] or "/" if path.startswith(self.rootfs + "/") else path

    def __getattr__(self, name):
        record = super().__getattr__(name)

        def call(*a, **kw):
            result = record(*a, **kw)
            if name in ("openat2", "open_tree"):
                self.fds[result] = self._at(a[0], a[1])
            elif name == "open":
                self.fds[result] = a[0]
            elif name == "mknodat":
                self.nodes[self._inside(self._at(a[0], a[1]))] = (a[2], a[3])
            elif name == "fstat":
                where = self._inside(self.path(a[0]))
                mode, dev = self.nodes.get(where, (stat.S_IFDIR | 0o755, 0))
                if where == "/dev/null":
                    mode, dev = stat.S_IFCHR | 0o666, NULL
                return SimpleNamespace(st_mode=mode, st_rdev=dev, st_dev=1, st_ino=a[0],
                                       st_uid=0, st_gid=0, st_nlink=1, st_size=0)
            elif name == "stat":
                if a[0] == "/dev/null":
                    return SimpleNamespace(st_mode=stat.S_IFCHR | 0o666, st_rdev=NULL,
                                           st_uid=0, st_gid=0)
                return SimpleNamespace(st_mode=stat.S_IFREG | 0o755, st_rdev=0, st_uid=0,
                                       st_gid=0)
            elif name == "readlinkat" and str(a[1]).startswith("/proc/self/fd/"):
                return self.path(int(a[1].rsplit("/", 1)[1]))
            elif name == "fstatfs_magic":
                return C.PROC_SUPER_MAGIC if self._inside(self.path(a[0])).startswith("/proc") \
                    else 0
            elif name == "fstatvfs":
                return SimpleNamespace(f_flag=0)
            elif name == "fchdir":
                self.cwd = self._inside(self.path(a[0]))
            elif name == "getcwd":
                return self.cwd
            elif name == "fork":
                return 0                        # carry on as the init
            elif name == "read_file":
                return self.files.get(a[0], b"")
            elif name == "write_file":
                self.files[a[0]] = a[1] if isinstance(a[1], bytes) else str(a[1]).encode()
            return result
        return call


WAITER_FD = 77


class Sync:
    def send(self, *a, **kw):
        pass

    def fileno(self):
        return 99


def execute(config, plan):
    """Run the executed phases; [(step, its calls)] in the order the executor ran them."""
    sys = PlanSys(config.root.path)
    seen = []
    ctx = Context(sys=sys, config=config, rootfs=config.root.path)
    ctx.extra.update(child_pid=CHILD, cgroup_created=[], sync=Sync(),
                     fault_at=lambda step, _ctx: seen.append((step, len(sys.calls))))
    rd, wr = os.pipe()
    os.write(wr, b"0")                          # `pyrunc start` already came
    ctx.extra["fifo_fd"] = rd
    ctx.extra["waiter_fd"] = WAITER_FD          # init.load_waiter's sealed copy
    try:
        for phase in EXECUTED:
            run_steps(plan.phase(phase), ctx)
    finally:
        os.close(wr)
        try:
            os.close(rd)
        except OSError:
            pass                                # AwaitStart closed it
    ends = [i for _, i in seen[1:]] + [len(sys.calls)]
    return sys, [(step, sys.calls[i:end]) for (step, i), end in zip(seen, ends)]


# --- what each step must have done ------------------------------------------------------

def calls(cs, name):
    return [c[1] for c in cs if c[0] == name]


def mounted_on(sys, cs, dest):
    """mount(2) calls whose target fd is dest (a container path)."""
    out = []
    for src, target, fstype, flags, data in calls(cs, "mount"):
        where = sys.path(int(target.rsplit("/", 1)[1])) if target.startswith("/proc/self/fd/") \
            else target
        if sys._inside(where) == dest:
            out.append((src, fstype, flags, data))
    return out


# capability(7) numbers, written out here so the check does not trust pyrunc.caps
CAPS = ("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
        "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
        "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
        "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
        "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
        "CHECKPOINT_RESTORE").split()


def cap_mask(names):
    m = 0
    for n in names:
        m |= 1 << CAPS.index(n.removeprefix("CAP_"))
    return m


def check(step, cs, sys):   # noqa: C901 - one branch per step type, on purpose
    kind = type(step).__name__
    if kind == "CreateCgroup":
        assert (step.dir, 0o755) in calls(cs, "mkdir")
    elif kind == "WriteCgroupFile":
        assert (f"{step.dir}/{step.file}", step.value) in calls(cs, "write_file")
    elif kind == "SetMemoryLimits":
        assert (f"{step.dir}/memory.limit_in_bytes", str(step.limit)) in calls(cs, "write_file")
    elif kind == "SetDevicesV1":
        writes = calls(cs, "write_file")
        assert (f"{step.dir}/devices.deny", "a") in writes
        for rule in step.rules:
            assert (f"{step.dir}/devices.allow", rule) in writes
    elif kind == "JoinCgroup":
        assert sorted(calls(cs, "write_file")) == sorted((f"{d}/cgroup.procs", str(CHILD))
                                                         for d in step.dirs)
    elif kind == "CreateNamespaces":
        flag = {"pid": C.CLONE_NEWPID, "network": C.CLONE_NEWNET, "mount": C.CLONE_NEWNS,
                "ipc": C.CLONE_NEWIPC, "uts": C.CLONE_NEWUTS, "user": C.CLONE_NEWUSER,
                "cgroup": C.CLONE_NEWCGROUP}
        want = 0
        for t in step.ns_types:
            want |= flag[t]
        assert calls(cs, "unshare") == [(want,)]
    elif kind == "EnterCgroups":
        # the child moves itself: v1 through `tasks`, v2 by being born there (ForkInit)
        assert calls(cs, "write_file") == [(f"{d}/tasks", "0") for d in step.v1_dirs]
        opened = [a[0] for a in calls(cs, "open")]
        assert opened == ([step.v2_dir] if step.v2_dir else [])
    elif kind == "OpenEarly":
        assert [a[0] for a in calls(cs, "open")] == [step.path]
    elif kind == "CloneInit":
        # launch() made the clone; in the init the step only says it is the init
        assert cs == []
    elif kind == "ForkInit":
        if calls(cs, "clone_fork"):
            (flags, fd), = calls(cs, "clone_fork")
            assert flags == 0
            assert sys.path(fd).startswith("/sys/fs/cgroup/") and calls(cs, "close") == [(fd,)]
        else:
            assert calls(cs, "fork") == [()]
    elif kind == "SetRootPropagation":
        assert calls(cs, "mount") == [(None, "/", None, step.flags, None)]
    elif kind == "BindRootfs":
        (src, fstype, flags, _), = mounted_on(sys, cs, step.path)
        assert (sys.path(int(src.rsplit("/", 1)[1])), flags) == (step.path, C.MS_BIND | C.MS_REC)
    elif kind == "MountFs":
        done = mounted_on(sys, cs, step.destination)
        assert done, f"nothing mounted on {step.destination}"
        src, fstype, flags, data = done[0]
        assert (data or "") == step.data
        if step.flags & C.MS_BIND:
            # a bind mount binds first; the other flags need the remount below
            assert flags == step.flags & (C.MS_BIND | C.MS_REC)
            assert sys.path(int(src.rsplit("/", 1)[1])) == step.source
        else:
            assert flags == step.flags
            assert (src, fstype) == (step.source, step.fstype)
        assert [f for _, _, f, _ in done[1:1 + len(step.propagation)]] == list(step.propagation)
        if step.remount_flags:
            assert any(f & C.MS_REMOUNT and f & step.remount_flags == step.remount_flags
                       for _, _, f, _ in done)
    elif kind == "MountCgroup":
        assert mounted_on(sys, cs, step.destination)
    elif kind == "MakeDevice":
        types = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
        (_, name, mode, dev), = calls(cs, "mknodat")
        assert (name, mode, dev) == (posixpath.basename(step.path),
                                     types[step.type] | step.file_mode,
                                     os.makedev(step.major, step.minor))
        assert [c[1:] for c in calls(cs, "chown")] == [(step.uid, step.gid)]
        assert [c[1:] for c in calls(cs, "chmod")] == [(step.file_mode,)]
    elif kind == "MakeSymlink":
        (target, _, name), = calls(cs, "symlinkat")
        assert (target, name) == (step.target, posixpath.basename(step.link))
        assert bool(calls(cs, "unlinkat")) == step.replace
    elif kind == "JoinSessionKeyring":
        assert calls(cs, "join_session_keyring") == [(step.name,)]
    elif kind == "PivotRoot":
        assert calls(cs, "pivot_root") == [(".", ".")]
    elif kind == "SetHostname":
        assert calls(cs, "sethostname") == [(step.name,)]
    elif kind == "WriteSysctl":
        (fd, data), = calls(cs, "write")
        assert data == step.value.encode()
        assert sys._inside(sys.path(fd)) == "/proc/sys/" + step.key.replace(".", "/")
    elif kind == "SetOomScoreAdj":
        (fd, data), = calls(cs, "write")
        assert (sys._inside(sys.path(fd)), data) == ("/proc/self/oom_score_adj",
                                                     str(step.value).encode())
    elif kind == "BringUpLoopback":
        assert calls(cs, "link_up") == [("lo",)]
    elif kind == "ReadonlyPath":
        done = mounted_on(sys, cs, step.path)
        assert done, f"nothing mounted on {step.path}"
        ro = C.MS_RDONLY | C.MS_REMOUNT | C.MS_BIND
        assert done[0][2] & C.MS_BIND and done[-1][2] & ro == ro
    elif kind == "MaskPath":
        (src, fstype, flags, _), = mounted_on(sys, cs, step.path)
        if fstype == "tmpfs":            # a directory: an empty read-only tmpfs
            assert flags & C.MS_RDONLY
        else:                            # a file: /dev/null bound over it
            assert flags & C.MS_BIND and sys.path(int(src.rsplit("/", 1)[1])) == "/dev/null"
    elif kind == "SetRlimit":
        import resource
        assert calls(cs, "setrlimit") == [(getattr(resource, step.type), step.soft, step.hard)]
    elif kind == "Chdir":
        if not step.after_user:
            (fd,), = calls(cs, "fchdir")
            assert sys._inside(sys.path(fd)) == step.cwd
    elif kind == "CompileSeccomp":
        assert len(calls(cs, "seccomp_new")) == 1
        assert len(calls(cs, "seccomp_add_arch")) == len(step.filter.architectures)
        assert calls(cs, "seccomp_export")
    elif kind == "LoadSeccomp":
        assert len(calls(cs, "seccomp_load")) == 1
    elif kind == "DropBoundingSet":
        from pyrunc.caps import last_cap
        kept = {bit for bit in range(last_cap() + 1) if cap_mask(step.keep) >> bit & 1}
        assert {c[0] for c in calls(cs, "capbset_drop")} == set(range(last_cap() + 1)) - kept
    elif kind == "SetUser":
        assert calls(cs, "setgroups") == [(list(step.additional_gids),)]
        assert calls(cs, "setresgid") == [(step.gid,) * 3]
        assert calls(cs, "setresuid") == [(step.uid,) * 3]
    elif kind == "SetCapabilities":
        (eff, perm, inh), = calls(cs, "capset")
        assert (eff, perm, inh) == (cap_mask(step.effective), cap_mask(step.permitted),
                                    cap_mask(step.inheritable))
    elif kind == "ResolveExecutable":
        assert calls(cs, "stat")
    elif kind == "SetNoNewPrivs":
        assert (C.PR_SET_NO_NEW_PRIVS, 1) in calls(cs, "prctl")
    elif kind == "CloseFds":
        assert calls(cs, "close_range_cloexec") == [(step.keep_up_to,)]
    elif kind == "Exec":
        (path, args, env), = calls(cs, "execve")
        assert args == list(step.args)
        assert {k: v for k, v in env.items() if f"{k}={v}" in step.env} == dict(
            e.split("=", 1) for e in step.env)
    elif kind == "ExecAwaitingStart":
        # the fifo survives into the waiter, which gets the program after it
        (name, blob), = calls(cs, "sealed_memfd")
        path, *args, end = blob.split(b"\0")
        assert path.startswith(b"/") and end == b""
        assert args == [os.fsencode(a) for a in step.args]
        inherit = [fd for fd, on in calls(cs, "set_inheritable") if on]
        # by execve through the container's /proc (the call runc execs with)
        (path, args, env), = calls(cs, "execve")
        assert path == f"/proc/self/fd/{WAITER_FD}" and len(inherit) == 2
        assert args == ["pyrunc-init", str(inherit[0]), str(inherit[1])]
        assert {k: v for k, v in env.items() if f"{k}={v}" in step.env} == dict(
            e.split("=", 1) for e in step.env)
    elif kind in ("ReopenDevNull", "AwaitStart"):
        pass      # nothing through sys: stdio here is not /dev/null; the fifo is real
    else:
        raise AssertionError(f"no check for {kind}: say what it must do")


@pytest.mark.parametrize("name", NAMES)
def test_the_executor_does_what_the_plan_says(fake_host, name):
    from pyrunc.plan.build import build_plan
    config = load_config(name)
    plan = build_plan(config, cid="c1")
    sys, done = execute(config, plan)
    assert [s for s, _ in done] == [s for s in plan.steps if s.phase in EXECUTED]
    for step, cs in done:
        try:
            check(step, cs, sys)
        except (AssertionError, ValueError) as e:
            raise AssertionError(f"{step.describe()}:\n  calls {cs}\n  {e}") from None


@pytest.mark.parametrize("name", NAMES)
def test_the_checks_tell_steps_apart(fake_host, name):
    """Each check fails on another step's syscalls: the comparison above can fail."""
    from pyrunc.plan.build import build_plan
    config = load_config(name)
    sys, done = execute(config, build_plan(config, cid="c1"))
    tried = 0
    for (a, _), (b, calls_b) in zip(done, done[1:]):
        if type(a) is type(b) and a.describe() != b.describe() and calls_b:
            tried += 1
            with pytest.raises((AssertionError, ValueError)):   # ValueError: unpacking
                check(a, calls_b, sys)
    assert tried >= 20
