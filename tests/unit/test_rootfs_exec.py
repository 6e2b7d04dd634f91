"""The rootfs handlers against the recording double: exact syscalls, fd targets, failures."""
import errno
import os
import stat
from types import SimpleNamespace

import pytest

from pyrunc.errors import RuntimeFailure
from pyrunc.executor import cgroupfs
from pyrunc.executor.base import Context, handler_for
from pyrunc.plan.steps import (BindRootfs, MakeDevice, MakeSymlink, MaskPath, MountCgroup,
                               MountFs, MoveRoot, PivotRoot, ReadonlyPath, RemountRootReadonly,
                               SetRootPropagation)
from tests.doubles import RecordingSys

import pyrunc.executor.rootfs  # noqa: F401  (registers the handlers)

C = RecordingSys.C
ROOT = 3
O_PATH, O_NOFOLLOW, O_DIRECTORY = os.O_PATH, os.O_NOFOLLOW, os.O_DIRECTORY
IN_ROOT = C.RESOLVE_IN_ROOT | C.RESOLVE_NO_MAGICLINKS
NO_LINKS = C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS
NOSUID, NODEV, NOEXEC, RO = C.MS_NOSUID, C.MS_NODEV, C.MS_NOEXEC, C.MS_RDONLY
BIND, REC, REMOUNT = C.MS_BIND, C.MS_REC, C.MS_REMOUNT


def st(kind, perm=0o755, rdev=0):
    return SimpleNamespace(st_mode=kind | perm, st_rdev=rdev)


DIR, FILE = st(stat.S_IFDIR), st(stat.S_IFREG, 0o644)
NULL = st(stat.S_IFCHR, 0o666, os.makedev(1, 3))


class Sys(RecordingSys):
    """RecordingSys plus per-fd fstat results, one-shot failures and file contents."""

    def __init__(self):
        super().__init__()
        self.stats = {}            # fd -> stat; default DIR
        self.failures = []         # [(name, predicate(args), errno)], each used once
        self.files = {}            # read_file contents
        self.locations = {}        # fd -> readlink of /proc/self/fd/N
        self.vfs_flags = 0

    def fail_once(self, name, errno_, when=lambda args: True):
        self.failures.append((name, when, errno_))

    def __getattr__(self, name):
        record = super().__getattr__(name)

        def call(*args, **kwargs):
            for i, (n, when, e) in enumerate(self.failures):
                if n == name and when(args):
                    del self.failures[i]
                    self.calls.append((name, args))
                    raise OSError(e, os.strerror(e))
            result = record(*args, **kwargs)
            if name == "fstat":
                return self.stats.get(args[0], DIR)
            if name == "fstatvfs":
                return SimpleNamespace(f_flag=self.vfs_flags)
            if name == "read_file":
                return self.files.get(args[0], b"")
            if name == "readlinkat" and args[1].startswith("/proc/self/fd/"):
                return self.locations.get(int(args[1].rsplit("/", 1)[1]))
            return result
        return call

    def mounts(self):
        return [c[1] for c in self.calls if c[0] == "mount"]


def run(step, sys=None, **ctx_kw):
    sys = sys or Sys()
    ctx = Context(sys=sys, config=None, rootfs="/r", root_fd=ROOT, **ctx_kw)
    handler_for(step)(step, ctx)
    return sys


def fd(n):
    return f"/proc/self/fd/{n}"


def assert_fd_targets(sys):
    for source, target, *_ in sys.mounts():
        assert target in ("/", ".") or target.startswith("/proc/self/fd/"), target


# --- before the mounts ----------------------------------------------------------

def test_set_root_propagation():
    assert run(SetRootPropagation(C.MS_SLAVE | REC)).mounts() == \
        [(None, "/", None, C.MS_SLAVE | REC, None)]


def test_bind_rootfs_privatises_shared_parent_and_reopens_root():
    sys = Sys()
    sys.files["/proc/self/mountinfo"] = (
        b"1 0 8:1 / / rw shared:1 - ext4 /dev/sda rw\n"
        b"2 1 8:2 / /var/lib rw shared:7 - ext4 /dev/sdb rw\n"
        b"3 1 8:3 / /var/lib/x rw - ext4 /dev/sdc rw\n")
    ctx = Context(sys=sys, config=None)
    handler_for(BindRootfs(""))(BindRootfs("/var/lib/c/rootfs"), ctx)
    assert sys.mounts() == [(None, "/var/lib", None, C.MS_PRIVATE, None),
                            (fd(101), fd(101), "bind", BIND | REC, None)]
    assert sys.of("open") == [("open", ("/var/lib/c/rootfs", O_PATH | O_DIRECTORY)),
                              ("open", ("/var/lib/c/rootfs", O_PATH | O_DIRECTORY))]
    assert ctx.root_fd == 102


# --- filesystems ---------------------------------------------------------------

PROC = MountFs("/proc", "proc", "proc", NOSUID | NODEV | NOEXEC, "", (), 0)


def test_proc_mounts_on_a_plain_directory_fd():
    sys = run(PROC)
    assert sys.calls[0] == ("openat2", (ROOT, "proc", O_PATH | O_NOFOLLOW, 0,
                                        C.RESOLVE_IN_ROOT | NO_LINKS))
    assert sys.mounts() == [("proc", fd(101), "proc", 0xe, None)]
    assert_fd_targets(sys)


def test_proc_through_a_symlink_is_refused():
    sys = Sys()
    sys.fail_once("openat2", errno.ELOOP)
    with pytest.raises(RuntimeFailure) as e:
        run(PROC, sys)
    assert str(e.value) == ('error mounting "proc" to rootfs at "/proc": filesystem "proc" '
                            'must be mounted on ordinary directory')
    assert sys.mounts() == []


def test_proc_on_a_file_is_refused():
    sys = Sys()
    sys.stats[101] = FILE
    with pytest.raises(RuntimeFailure):
        run(PROC, sys)
    assert sys.mounts() == []


def test_mount_failure_message_like_runc():
    sys = Sys()
    sys.fail_once("mount", errno.EACCES)
    with pytest.raises(RuntimeFailure) as e:
        run(PROC, sys)
    assert str(e.value) == ('error mounting "proc" to rootfs at "/proc": mount proc:/proc '
                            '(via /proc/self/fd/101), flags: 0xe: permission denied')


def test_tmpfs_on_existing_dir_keeps_its_mode_and_applies_propagation():
    sys = Sys()
    sys.stats[101] = st(stat.S_IFDIR, 0o1777)
    run(MountFs("/tmp", "tmpfs", "tmpfs", NOSUID, "size=1m", (C.MS_PRIVATE,), 0), sys)
    assert sys.mounts() == [("tmpfs", fd(102), "tmpfs", NOSUID, "size=1m"),
                            (None, fd(103), None, C.MS_PRIVATE, None)]
    assert sys.of("chmod") == [("chmod", (fd(103), 0o1777))]
    assert sys.calls[0] == ("openat2", (ROOT, "tmp", O_PATH | O_DIRECTORY, 0, IN_ROOT))


def test_tmpfs_on_new_dir_is_not_chmodded():
    sys = Sys()
    sys.fail_once("openat2", errno.ENOENT)
    run(MountFs("/run", "tmpfs", "tmpfs", 0, "", (), 0), sys)
    assert sys.of("chmod") == []
    assert [m[0] for m in sys.mounts()] == ["tmpfs"]


def test_tmpcopyup_reads_the_hidden_directory_through_an_old_fd():
    sys = Sys()
    run(MountFs("/etc", "tmpfs", "tmpfs", 0, "", (), 0, copyup=True), sys)
    names = sys.names()
    lower = ("open", (fd(102), O_DIRECTORY))
    assert sys.calls.index(lower) < names.index("mount")
    assert ("open", (fd(104), O_DIRECTORY)) in sys.calls
    assert sys.of("copy_tree") == [("copy_tree", (103, 105))]


def test_devpts_and_mqueue_mkdir_in_root_then_mount():
    sys = run(MountFs("/dev/pts", "devpts", "devpts", NOSUID | NOEXEC, "newinstance", (), 0))
    assert sys.calls[0] == ("openat2", (ROOT, "dev/pts", O_PATH | O_DIRECTORY, 0, IN_ROOT))
    assert sys.mounts() == [("devpts", fd(101), "devpts", NOSUID | NOEXEC, "newinstance")]


def test_recursive_attrs_via_mount_setattr_on_the_new_mount():
    sys = run(MountFs("/d", "/h", "bind", BIND | REC, "", (), 0,
                      attr_set=C.MOUNT_ATTR_RDONLY, attr_clr=0))
    assert sys.of("mount_setattr") == [
        ("mount_setattr", (103, "", C.AT_EMPTY_PATH | C.AT_RECURSIVE, C.MOUNT_ATTR_RDONLY, 0))]


def test_userns_sysfs_falls_back_to_binding_host_sys():
    sys = Sys()
    sys.fail_once("mount", errno.EPERM)
    run(MountFs("/sys", "sysfs", "sysfs", RO | NOSUID, "", (), 0), sys, userns=True)
    assert sys.of("open")[0] == ("open", ("/sys", O_PATH))
    assert sys.mounts()[1][2:4] == ("bind", BIND | REC)
    assert sys.mounts()[2] == (None, sys.mounts()[2][1], None, BIND | REMOUNT | RO | NOSUID, None)


# --- bind mounts ----------------------------------------------------------------

def bind_step(flags=BIND | REC, remount=0, cleared=0, prop=()):
    return MountFs("/etc/hosts", "/host/hosts", "bind", flags | remount, "", prop, remount,
                   cleared)


def test_file_bind_creates_file_target_mounts_then_propagation_then_remount():
    sys = Sys()
    sys.stats[101] = FILE                 # the source
    run(bind_step(remount=RO | NOSUID, prop=(C.MS_PRIVATE | REC,)), sys)
    assert sys.calls[:3] == [("open", ("/host/hosts", O_PATH)), ("fstat", (101,)),
                             ("openat2", (ROOT, "etc/hosts", O_PATH, 0, IN_ROOT))]
    assert sys.mounts() == [
        (fd(101), fd(102), "bind", BIND | REC, None),
        (None, fd(103), None, C.MS_PRIVATE | REC, None),
        (None, fd(103), None, BIND | REMOUNT | RO | NOSUID, None)]
    assert_fd_targets(sys)


def test_dir_bind_uses_a_directory_target():
    sys = Sys()
    run(MountFs("/data", "/host/d", "bind", BIND, "", (), 0), sys)
    assert sys.calls[2] == ("openat2", (ROOT, "data", O_PATH | O_DIRECTORY, 0, IN_ROOT))
    assert len(sys.mounts()) == 1      # nothing to remount


def test_locked_flags_are_kept_on_eperm():
    sys = Sys()
    sys.stats[101] = FILE
    sys.vfs_flags = RO | NODEV | NOSUID | C.MS_RELATIME
    sys.fail_once("mount", errno.EPERM, lambda a: a[3] & REMOUNT)
    run(bind_step(remount=NOSUID), sys, userns=True)
    assert sys.mounts()[-2:] == [(None, fd(103), None, BIND | REMOUNT | NOSUID, None),
                                 (None, fd(103), None, BIND | REMOUNT | NOSUID | RO | NODEV,
                                  None)]
    assert sys.of("fstatvfs") == [("fstatvfs", (101,))]     # of the source


def test_locked_flag_explicitly_cleared_is_an_error():
    sys = Sys()
    sys.stats[101] = FILE
    sys.vfs_flags = NODEV
    sys.fail_once("mount", errno.EPERM, lambda a: a[3] & REMOUNT)
    with pytest.raises(RuntimeFailure) as e:
        run(bind_step(remount=NOSUID, cleared=NODEV), sys, userns=True)
    assert str(e.value).endswith("operation not permitted")
    assert len(sys.mounts()) == 2       # bind + the one refused remount


def test_target_swapped_during_mount_is_an_error():
    sys = Sys()
    sys.locations = {102: "/r/etc/hosts", 103: "/r/elsewhere"}
    sys.stats[101] = FILE
    with pytest.raises(RuntimeFailure) as e:
        run(bind_step(remount=RO), sys)
    assert "moved" in str(e.value)
    assert len(sys.mounts()) == 1       # no remount on the wrong mount


def test_target_outside_the_root_is_never_mounted_on():
    sys = Sys()
    sys.locations = {102: "/host/etc/hosts"}
    sys.stats[101] = FILE
    with pytest.raises(RuntimeFailure):
        run(bind_step(), sys, extra={"root_location": "/r"})
    assert sys.mounts() == []


# --- devices and links --------------------------------------------------------------

NULL_DEV = MakeDevice("/dev/null", "c", 1, 3, 0o666, 0, 5, False)


def test_make_device_mknod_then_chown_chmod_through_fd():
    sys = Sys()
    sys.stats[102] = NULL
    run(NULL_DEV, sys)
    assert sys.calls == [
        ("openat2", (ROOT, "dev", O_PATH | O_DIRECTORY, 0, IN_ROOT)),
        ("mknodat", (101, "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))),
        ("openat2", (101, "null", O_PATH | O_NOFOLLOW, 0, 0)),
        ("fstat", (102,)),
        ("chown", (fd(102), 0, 5)),
        ("chmod", (fd(102), 0o666)),
        ("close", (102,)), ("close", (101,))]


def test_make_device_existing_node_is_left_alone():
    sys = Sys()
    sys.fail_once("mknodat", errno.EEXIST)
    run(NULL_DEV, sys)
    assert "chown" not in sys.names() and sys.mounts() == []


@pytest.mark.parametrize("how", ["userns", "eperm"])
def test_make_device_binds_host_node(how):
    sys = Sys()
    step = NULL_DEV
    if how == "userns":
        step = MakeDevice("/dev/null", "c", 1, 3, 0o666, 0, 0, True)
    else:
        sys.fail_once("mknodat", errno.EPERM)
    run(step, sys)
    assert ("openat2", (101, "null", os.O_WRONLY | os.O_CREAT | O_NOFOLLOW, 0o600, 0)) \
        in sys.calls
    assert ("open", ("/dev/null", O_PATH)) in sys.calls
    assert sys.mounts() == [(fd(103), fd(104), "bind", BIND, None)]
    assert ("mknodat" in sys.names()) == (how == "eperm")


def test_symlink_replace_removes_then_links():
    sys = run(MakeSymlink("pts/ptmx", "/dev/ptmx", replace=True))
    assert sys.calls[1:] == [("unlinkat", (101, "ptmx")),
                             ("symlinkat", ("pts/ptmx", 101, "ptmx")), ("close", (101,))]


def test_symlink_existing_is_fine():
    sys = Sys()
    sys.fail_once("symlinkat", errno.EEXIST)
    run(MakeSymlink("/proc/self/fd", "/dev/fd"), sys)


# --- the jail and after ---------------------------------------------------------

def test_pivot_root_sequence():
    sys = run(PivotRoot("/r"))
    assert sys.calls == [
        ("open", ("/", O_DIRECTORY)), ("fchdir", (ROOT,)), ("pivot_root", (".", ".")),
        ("fchdir", (101,)), ("mount", (None, ".", None, C.MS_SLAVE | REC, None)),
        ("umount2", (".", C.MNT_DETACH)), ("chdir", ("/",)), ("close", (101,))]


def test_after_jail_propagation_and_readonly_tmpfs():
    sys = run(PivotRoot("/r", C.MS_SHARED, (("/dev", NOSUID | RO),)))
    assert sys.mounts()[1:] == [(None, "/", None, C.MS_SHARED, None),
                                (None, fd(102), None, NOSUID | RO | REMOUNT | BIND, None)]
    assert ("openat2", (ROOT, "dev", O_PATH | O_DIRECTORY, 0, IN_ROOT)) in sys.calls


def test_move_root_hides_host_proc_then_moves():
    sys = Sys()
    sys.files["/proc/self/mountinfo"] = (
        b"1 0 8:1 / / rw - ext4 /dev/sda rw\n"
        b"2 1 0:5 / /proc rw - proc proc rw\n"
        b"3 1 0:6 / /r/proc rw - proc proc rw\n"
        b"4 1 0:7 /sub /mnt/sys rw - sysfs sysfs rw\n")
    run(MoveRoot("/r"), sys, extra={"root_location": "/r"})
    assert sys.calls[1:] == [
        ("mount", (None, "/proc", None, C.MS_SLAVE | REC, None)),
        ("umount2", ("/proc", C.MNT_DETACH)),
        ("fchdir", (ROOT,)), ("mount", (".", "/", None, C.MS_MOVE, None)),
        ("chroot", (".",)), ("chdir", ("/",))]


def test_remount_root_readonly_keeps_locked_flags():
    sys = Sys()
    sys.fail_once("mount", errno.EPERM)
    sys.vfs_flags = NOSUID | NODEV
    run(RemountRootReadonly(), sys)
    base = BIND | REMOUNT | RO
    assert sys.mounts() == [(None, "/", None, base, None),
                            (None, "/", None, base | NOSUID | NODEV, None)]


def test_readonly_path_binds_onto_itself_and_keeps_nosuid_nodev_noexec():
    sys = Sys()
    sys.vfs_flags = NOSUID | NODEV | NOEXEC | C.MS_RELATIME
    run(ReadonlyPath("/proc/sys"), sys)
    assert sys.calls[0] == ("openat2", (ROOT, "proc/sys", O_PATH | O_NOFOLLOW, 0, NO_LINKS))
    assert sys.mounts() == [
        (fd(101), fd(101), None, BIND | REC, None),
        (fd(102), fd(102), None, NOSUID | NODEV | NOEXEC | BIND | REMOUNT | RO, None)]


@pytest.mark.parametrize("step", [ReadonlyPath("/proc/x"), MaskPath("/proc/x")])
def test_missing_paths_are_ignored(step):
    sys = Sys()
    sys.fail_once("openat2", errno.ENOENT)
    assert run(step, sys).mounts() == []


@pytest.mark.parametrize("step", [ReadonlyPath("/proc/x"), MaskPath("/proc/x")])
def test_symlinked_paths_are_refused(step):
    sys = Sys()
    sys.stats[101] = st(stat.S_IFLNK, 0o777)
    with pytest.raises(RuntimeFailure):
        run(step, sys)
    assert sys.mounts() == []


def test_mask_file_with_verified_dev_null():
    sys = Sys()
    sys.stats.update({101: FILE, 102: NULL})
    run(MaskPath("/proc/kcore"), sys)
    assert sys.calls[2] == ("openat2", (ROOT, "dev/null", O_PATH | O_NOFOLLOW, 0, NO_LINKS))
    assert sys.mounts() == [(fd(102), fd(101), None, BIND, None)]


@pytest.mark.parametrize("fake", [FILE, st(stat.S_IFCHR, 0o666, os.makedev(1, 5)),
                                  st(stat.S_IFLNK, 0o777)])
def test_mask_refuses_a_fake_dev_null(fake):
    sys = Sys()
    sys.stats.update({101: FILE, 102: fake})
    with pytest.raises(RuntimeFailure) as e:
        run(MaskPath("/proc/kcore"), sys)
    assert "1:3" in str(e.value)
    assert sys.mounts() == []


def test_mask_directory_with_readonly_tmpfs():
    sys = run(MaskPath("/sys/firmware"))
    assert sys.mounts() == [("tmpfs", fd(101), "tmpfs", RO, None)]


# --- cgroup mounts --------------------------------------------------------------

V1_MOUNTINFO = (
    b"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    b"32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    b"35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    b"40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    b"41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
V1_CGROUP = b"9:name=systemd:/ctr\n4:memory:/ctr\n2:cpu,cpuacct:/ctr\n0::/\n"
V2_MOUNTINFO = b"31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"


def cg_sys(mountinfo, cgroup):
    sys = Sys()
    sys.files = {"/proc/self/mountinfo": mountinfo, "/proc/self/cgroup": cgroup}
    return sys


def test_probe_layout_v1_and_v2():
    layout = cgroupfs.probe(cg_sys(V1_MOUNTINFO, V1_CGROUP))
    assert not layout.unified
    assert [(h.name, h.subsystems, h.source) for h in layout.hierarchies] == [
        ("cpu,cpuacct", "cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/ctr"),
        ("memory", "memory", "/sys/fs/cgroup/memory/ctr"),
        ("systemd", "name=systemd", "/sys/fs/cgroup/systemd/ctr")]
    layout = cgroupfs.probe(cg_sys(V2_MOUNTINFO, b"0::/system.slice/ctr\n"))
    assert layout == cgroupfs.CgroupLayout(True, (), "/sys/fs/cgroup/system.slice/ctr")


def test_mountinfo_escapes():
    m = cgroupfs.parse_mountinfo(r"1 0 8:1 / /a\040b rw - ext4 /dev/x rw")
    assert m[0].mountpoint == "/a b"


CG = MountCgroup("/sys/fs/cgroup", NOSUID | NODEV | NOEXEC, (), True, False)


def test_cgroup_v1_clones_own_cgroup_read_only_onto_new_dirs_and_links_comounted():
    """The new mount API: each source's mount cloned, made read-only while
    detached, attached to a directory made in our own tmpfs."""
    from pyrunc.plan import mountopts as mo
    sys = run(CG, cg_sys(V1_MOUNTINFO, V1_CGROUP))
    assert [m[2] for m in sys.mounts()] == ["tmpfs"]   # no bind, no remount by path
    assert [c[1][0] for c in sys.of("open")] == ["/sys/fs/cgroup/cpu,cpuacct/ctr",
                                                 "/sys/fs/cgroup/memory/ctr",
                                                 "/sys/fs/cgroup/systemd/ctr"]
    C = sys.C
    trees = sys.of("open_tree")
    assert len(trees) == 3 and all(c[1][2] == C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC |
                                   C.AT_EMPTY_PATH | C.AT_RECURSIVE for c in trees)
    attrs = mo.MOUNT_ATTR_RDONLY | mo.MOUNT_ATTR_NOSUID | mo.MOUNT_ATTR_NODEV | \
        mo.MOUNT_ATTR_NOEXEC
    assert [c[1][3:5] for c in sys.of("mount_setattr")] == [(attrs, mo.MOUNT_ATTR__ATIME)] * 3
    assert [c[1][1:3] for c in sys.of("mkdirat")][-3:] == [
        ("cpu,cpuacct", 0o755), ("memory", 0o755), ("systemd", 0o755)]
    moves = sys.of("move_mount")
    assert len(moves) == 3 and all(c[1][4] == C.MOVE_MOUNT_F_EMPTY_PATH |
                                   C.MOVE_MOUNT_T_EMPTY_PATH for c in moves)
    # each attached tree is the one whose attributes were set
    assert [c[1][0] for c in moves] == [c[1][0] for c in sys.of("mount_setattr")]
    assert [c[1][0::2] for c in sys.of("symlinkat")] == [("cpu,cpuacct", "cpu"),
                                                         ("cpu,cpuacct", "cpuacct")]
    assert not any("unified" in str(c) for c in sys.calls)


def test_cgroup_v1_binds_own_cgroup_read_only_and_links_comounted():
    """Without the new mount API (linux < 5.12): bind, then remount read-only."""
    sys = cg_sys(V1_MOUNTINFO, V1_CGROUP)
    sys.fail["open_tree"] = errno.ENOSYS
    sys = run(CG, sys)
    mounts = sys.mounts()
    assert mounts[0][0] == "tmpfs" and mounts[0][2:] == ("tmpfs", NOSUID | NODEV | NOEXEC,
                                                          "mode=755")
    binds = [m for m in mounts if m[2] == "bind"]
    assert len(binds) == 3 and all(m[3] == BIND | REC for m in binds)
    remounts = [m for m in mounts if m[3] & REMOUNT]
    assert len(remounts) == 3
    assert all(m[3] == BIND | REMOUNT | RO | NOSUID | NODEV | NOEXEC for m in remounts)
    # (the first source is opened twice: once for the open_tree that failed)
    assert list(dict.fromkeys(c[1][0] for c in sys.of("open"))) == [
                                                 "/sys/fs/cgroup/cpu,cpuacct/ctr",
                                                 "/sys/fs/cgroup/memory/ctr",
                                                 "/sys/fs/cgroup/systemd/ctr"]
    assert [c[1][0::2] for c in sys.of("symlinkat")] == [("cpu,cpuacct", "cpu"),
                                                         ("cpu,cpuacct", "cpuacct")]
    assert not any("unified" in str(c) for c in sys.calls)
    assert_fd_targets(sys)


def test_cgroup_v1_rw_is_not_remounted_ro():
    sys = run(MountCgroup("/sys/fs/cgroup", 0, (), False, False), cg_sys(V1_MOUNTINFO, V1_CGROUP))
    assert not any(m[3] & REMOUNT for m in sys.mounts())


def test_cgroup_v1_in_cgroupns_mounts_each_hierarchy():
    sys = run(MountCgroup("/sys/fs/cgroup", NOSUID, (), True, True),
              cg_sys(V1_MOUNTINFO, b"4:memory:/\n2:cpu,cpuacct:/\n9:name=systemd:/\n"))
    fresh = [m for m in sys.mounts() if m[2] == "cgroup"]
    assert [(m[0], m[3], m[4]) for m in fresh] == [
        ("cgroup", NOSUID | NODEV | NOEXEC | RO, "cpu,cpuacct"),
        ("cgroup", NOSUID | NODEV | NOEXEC | RO, "memory"),
        ("systemd", NOSUID | NODEV | NOEXEC | RO, "name=systemd")]


def test_cgroup_v2_in_cgroupns_mounts_cgroup2_ro():
    sys = run(MountCgroup("/sys/fs/cgroup", NOSUID, (), True, True),
              cg_sys(V2_MOUNTINFO, b"0::/\n"))
    assert sys.mounts() == [("cgroup", fd(101), "cgroup2", NOSUID | RO, None)]


def test_cgroup_v2_without_cgroupns_binds_own_dir():
    sys = run(MountCgroup("/sys/fs/cgroup", NOSUID, (), True, False),
              cg_sys(V2_MOUNTINFO, b"0::/docker/abc\n"))
    assert sys.of("open") == [("open", ("/sys/fs/cgroup/docker/abc", O_PATH | O_DIRECTORY))]
    assert [m[3] for m in sys.mounts()] == [BIND, BIND | REMOUNT | NOSUID | RO]


# --- tmpcopyup's copy, on a real filesystem ---------------------------------------

def test_copy_tree_copies_files_dirs_links_and_modes(tmp_path):
    from pyrunc import syscalls
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    dst.mkdir()
    (src / "d/f").write_text("data")
    (src / "d/f").chmod(0o640)
    (src / "d").chmod(0o710)
    os.symlink("../../outside", src / "link")
    os.mkfifo(src / "fifo")
    s, d = os.open(src, os.O_RDONLY | O_DIRECTORY), os.open(dst, os.O_RDONLY | O_DIRECTORY)
    try:
        syscalls.copy_tree(s, d)
    finally:
        os.close(s)
        os.close(d)
    assert (dst / "d/f").read_text() == "data"
    assert stat.S_IMODE((dst / "d/f").stat().st_mode) == 0o640
    assert stat.S_IMODE((dst / "d").stat().st_mode) == 0o710
    assert os.readlink(dst / "link") == "../../outside"     # copied, never followed
    assert stat.S_ISFIFO((dst / "fifo").lstat().st_mode)
    assert not (tmp_path / "outside").exists()
