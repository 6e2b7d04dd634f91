import pytest

from pyrunc import syscalls
from pyrunc.errors import ConfigError
from pyrunc.plan import mountopts as mo
from pyrunc.plan.mountopts import parse_mount_options as parse

C = syscalls.C


@pytest.mark.parametrize("name", [n for n in dir(mo) if n.startswith(("MS_", "MOUNT_ATTR_"))
                                  and hasattr(C, n)])
def test_constants_match_the_kernel_headers(name):
    assert getattr(mo, name) == getattr(C, name)


# option -> (flags set, flags cleared)
FLAG_TABLE = [
    ("ro", C.MS_RDONLY, 0), ("rw", 0, C.MS_RDONLY),
    ("nosuid", C.MS_NOSUID, 0), ("suid", 0, C.MS_NOSUID),
    ("nodev", C.MS_NODEV, 0), ("dev", 0, C.MS_NODEV),
    ("noexec", C.MS_NOEXEC, 0), ("exec", 0, C.MS_NOEXEC),
    ("sync", C.MS_SYNCHRONOUS, 0), ("async", 0, C.MS_SYNCHRONOUS),
    ("dirsync", C.MS_DIRSYNC, 0), ("remount", C.MS_REMOUNT, 0),
    ("mand", C.MS_MANDLOCK, 0), ("nomand", 0, C.MS_MANDLOCK),
    ("noatime", C.MS_NOATIME, 0), ("atime", 0, C.MS_NOATIME),
    ("nodiratime", C.MS_NODIRATIME, 0), ("diratime", 0, C.MS_NODIRATIME),
    ("relatime", C.MS_RELATIME, 0), ("norelatime", 0, C.MS_RELATIME),
    ("strictatime", C.MS_STRICTATIME, 0), ("nostrictatime", 0, C.MS_STRICTATIME),
    ("lazytime", C.MS_LAZYTIME, 0), ("nolazytime", 0, C.MS_LAZYTIME),
    ("nosymfollow", C.MS_NOSYMFOLLOW, 0), ("symfollow", 0, C.MS_NOSYMFOLLOW),
    ("bind", C.MS_BIND, 0), ("rbind", C.MS_BIND | C.MS_REC, 0),
]


@pytest.mark.parametrize("opt,flags,cleared", FLAG_TABLE)
def test_flag_options(opt, flags, cleared):
    o = parse([opt])
    assert (o.flags, o.cleared, o.data, o.propagation) == (flags, cleared, "", ())


PROPAGATION_TABLE = [
    ("private", C.MS_PRIVATE), ("rprivate", C.MS_PRIVATE | C.MS_REC),
    ("shared", C.MS_SHARED), ("rshared", C.MS_SHARED | C.MS_REC),
    ("slave", C.MS_SLAVE), ("rslave", C.MS_SLAVE | C.MS_REC),
    ("unbindable", C.MS_UNBINDABLE), ("runbindable", C.MS_UNBINDABLE | C.MS_REC),
]


@pytest.mark.parametrize("opt,flag", PROPAGATION_TABLE)
def test_propagation_options_are_separate_calls(opt, flag):
    o = parse(["nosuid", opt])
    assert o.propagation == (flag,)
    assert o.flags == C.MS_NOSUID


def test_propagation_order_is_kept():
    assert parse(["rprivate", "shared"]).propagation == (C.MS_PRIVATE | C.MS_REC, C.MS_SHARED)


RECURSIVE_TABLE = [
    ("rro", C.MOUNT_ATTR_RDONLY, 0), ("rrw", 0, C.MOUNT_ATTR_RDONLY),
    ("rnosuid", C.MOUNT_ATTR_NOSUID, 0), ("rsuid", 0, C.MOUNT_ATTR_NOSUID),
    ("rnodev", C.MOUNT_ATTR_NODEV, 0), ("rdev", 0, C.MOUNT_ATTR_NODEV),
    ("rnoexec", C.MOUNT_ATTR_NOEXEC, 0), ("rexec", 0, C.MOUNT_ATTR_NOEXEC),
    ("rnodiratime", C.MOUNT_ATTR_NODIRATIME, 0), ("rdiratime", 0, C.MOUNT_ATTR_NODIRATIME),
    # an atime mode is set by clearing the whole atime field in the same call
    ("rnoatime", C.MOUNT_ATTR_NOATIME, C.MOUNT_ATTR__ATIME), ("ratime", 0, C.MOUNT_ATTR_NOATIME),
    ("rrelatime", C.MOUNT_ATTR_RELATIME, C.MOUNT_ATTR__ATIME), ("rnorelatime", 0, 0),
    ("rstrictatime", C.MOUNT_ATTR_STRICTATIME, C.MOUNT_ATTR__ATIME),
    ("rnostrictatime", 0, C.MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", C.MOUNT_ATTR_NOSYMFOLLOW, 0), ("rsymfollow", 0, C.MOUNT_ATTR_NOSYMFOLLOW),
]


@pytest.mark.parametrize("opt,attr_set,attr_clr", RECURSIVE_TABLE)
def test_recursive_options(opt, attr_set, attr_clr):
    o = parse([opt])
    assert (o.attr_set, o.attr_clr, o.flags, o.data) == (attr_set, attr_clr, 0, "")


def test_later_atime_mode_replaces_earlier_one():
    o = parse(["rnoatime", "rstrictatime"])
    assert o.attr_set == C.MOUNT_ATTR_STRICTATIME
    assert o.attr_clr == C.MOUNT_ATTR__ATIME


def test_last_of_a_pair_wins():
    assert parse(["ro", "rw"]).flags == 0
    assert parse(["ro", "rw"]).cleared == C.MS_RDONLY
    assert parse(["rw", "ro"]).flags == C.MS_RDONLY
    assert parse(["rw", "ro"]).cleared == 0
    o = parse(["rro", "rrw"])
    assert (o.attr_set, o.attr_clr) == (0, C.MOUNT_ATTR_RDONLY)


def test_unknown_options_become_data_in_order():
    o = parse(["nosuid", "mode=755", "size=65536k", "strictatime", "newinstance"])
    assert o.data == "mode=755,size=65536k,newinstance"
    assert o.flags == C.MS_NOSUID | C.MS_STRICTATIME


def test_defaults_is_a_no_op_not_data():
    assert parse(["defaults"]) == mo.MountOptions()


def test_tmpcopyup_is_recognised():
    o = parse(["tmpcopyup", "mode=1777"])
    assert o.copyup and o.data == "mode=1777"


@pytest.mark.parametrize("opt", ["idmap", "ridmap"])
def test_idmap_is_a_clear_error(opt):
    with pytest.raises(ConfigError) as e:
        parse(["rbind", opt], "mounts[3].options")
    assert "mounts[3].options" in str(e.value) and "not supported" in str(e.value)


def test_bind_remount_flags_exclude_bind_rec_remount():
    o = parse(["rbind", "ro", "nosuid", "remount"])
    assert o.bind
    assert o.remount_flags == C.MS_RDONLY | C.MS_NOSUID
    assert not parse(["nosuid"]).bind


def test_docker_and_podman_option_lists():
    o = parse(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
    assert o.flags == C.MS_NOSUID | C.MS_NOEXEC
    assert o.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    o = parse(["bind", "rprivate", "nosuid", "noexec", "nodev"])
    assert o.flags == C.MS_BIND | C.MS_NOSUID | C.MS_NOEXEC | C.MS_NODEV
    assert o.propagation == (C.MS_PRIVATE | C.MS_REC,)


def test_propagation_flag():
    assert mo.propagation_flag("rslave") == C.MS_SLAVE | C.MS_REC
    with pytest.raises(ConfigError):
        mo.propagation_flag("sideways")
