import json
from pathlib import Path

import pytest

from pyrunc import syscalls
from pyrunc.errors import ConfigError
from pyrunc.plan.rootfs import plan_rootfs
from pyrunc.plan.steps import (BindRootfs, MakeDevice, MakeSymlink, MaskPath, MountCgroup,
                               MountFs, MoveRoot, Phase, PivotRoot, ReadonlyPath,
                               RemountRootReadonly, SetRootPropagation, SetupConsole)
from pyrunc.spec.config import Config

C = syscalls.C
FIXTURES = Path("/work/shared/fixtures/real-configs")
NOSUID, NODEV, NOEXEC, RO = C.MS_NOSUID, C.MS_NODEV, C.MS_NOEXEC, C.MS_RDONLY
RPRIVATE = C.MS_PRIVATE | C.MS_REC

DEVICES = [MakeDevice(p, "c", ma, mi, 0o666, 0, 0, False) for p, ma, mi in (
    ("/dev/null", 1, 3), ("/dev/random", 1, 8), ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0), ("/dev/zero", 1, 5), ("/dev/urandom", 1, 9))]
LINKS = [MakeSymlink("pts/ptmx", "/dev/ptmx", replace=True),
         MakeSymlink("/proc/self/fd", "/dev/fd"), MakeSymlink("/proc/self/fd/0", "/dev/stdin"),
         MakeSymlink("/proc/self/fd/1", "/dev/stdout"),
         MakeSymlink("/proc/self/fd/2", "/dev/stderr")]


def load(name, **changes):
    d = json.loads((FIXTURES / name).read_text())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            d.setdefault(section, {})[field] = value
        else:
            d[section] = value
    return Config.from_dict(d, "/bundle")


def cfg(mounts=(), **linux):
    return Config.from_dict({"ociVersion": "1.2.0", "root": {"path": "rootfs"},
                             "mounts": list(mounts),
                             "linux": {"namespaces": [{"type": "mount"}], **linux}}, "/b")


def plan(config, **kw):
    kw.setdefault("host_kcore", False)
    return plan_rootfs(config, **kw)


def test_docker_config_full_sequence():
    c = load("docker-create-config.json")
    pre, post = plan(c)
    root = c.root.path
    assert pre == [
        SetRootPropagation(C.MS_SLAVE | C.MS_REC),
        BindRootfs(root),
        MountFs("/proc", "proc", "proc", NOSUID | NOEXEC | NODEV, "", (), 0),
        MountFs("/dev", "tmpfs", "tmpfs", NOSUID | C.MS_STRICTATIME, "mode=755,size=65536k", (), 0),
        MountFs("/dev/pts", "devpts", "devpts", NOSUID | NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5", (), 0),
        MountFs("/sys", "sysfs", "sysfs", NOSUID | NOEXEC | NODEV | RO, "", (), 0),
        MountCgroup("/sys/fs/cgroup", NOSUID | NOEXEC | NODEV, (), True, False),
        MountFs("/dev/mqueue", "mqueue", "mqueue", NOSUID | NOEXEC | NODEV, "", (), 0),
        MountFs("/dev/shm", "shm", "tmpfs", NOSUID | NOEXEC | NODEV, "mode=1777,size=67108864",
                (), 0),
        *[MountFs(f"/etc/{n}", f"/var/lib/docker/containers/68208d8cf31a7d2470bcca17365944e4c42d"
                  f"87a5e73c09dc1cdd8597c3c673a7/{n}", "bind", C.MS_BIND | C.MS_REC, "",
                  (RPRIVATE,), 0) for n in ("resolv.conf", "hostname", "hosts")],
        *DEVICES, *LINKS,
    ]
    assert post == [PivotRoot(root)] + \
        [ReadonlyPath(p) for p in c.linux.readonly_paths] + \
        [MaskPath(p) for p in c.linux.masked_paths]
    assert {s.phase for s in pre} == {Phase.ROOTFS}
    assert {s.phase for s in post} == {Phase.CONTAINER}


def test_podman_config_bind_dev_shm_remounts_flags():
    c = load("podman-create-config.json")
    pre, _ = plan(c)
    shm = next(s for s in pre if getattr(s, "destination", "") == "/dev/shm")
    assert shm.flags == C.MS_BIND | NOSUID | NOEXEC | NODEV
    assert shm.remount_flags == NOSUID | NOEXEC | NODEV
    assert shm.propagation == (RPRIVATE,)
    cg = next(s for s in pre if isinstance(s, MountCgroup))
    assert cg == MountCgroup("/sys/fs/cgroup", NOSUID | NOEXEC | NODEV | C.MS_RELATIME,
                             (RPRIVATE,), True, False)
    # podman's /dev tmpfs is noexec too; no ro, so nothing is remounted after the jail
    dev = next(s for s in pre if getattr(s, "destination", "") == "/dev")
    assert dev.flags == NOSUID | NOEXEC | C.MS_STRICTATIME


def test_ctr_config_has_no_cgroup_mount_and_masks_in_order():
    c = load("ctr-create-config.json")
    pre, post = plan(c)
    assert not any(isinstance(s, MountCgroup) for s in pre)
    assert [type(s).__name__ for s in pre[:2]] == ["SetRootPropagation", "BindRootfs"]
    assert [s.destination for s in pre if isinstance(s, MountFs)] == \
        ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run"]
    assert [s.path for s in post if isinstance(s, MaskPath)][0] == "/proc/acpi"


def test_terminal_console_last_and_no_pivot_move_root():
    c = load("ctr-create-config.json")
    pre, post = plan(c, terminal=True, no_pivot=True)
    assert pre[-1] == SetupConsole(None)
    assert post[0] == MoveRoot(c.root.path)


def test_readonly_root_and_kcore_link():
    c = load("ctr-create-config.json", root={"path": "rootfs", "readonly": True})
    pre, post = plan(c, host_kcore=True)
    assert post[1] == RemountRootReadonly()
    assert pre[-1] == MakeSymlink("/proc/kcore", "/dev/core")


def test_bind_mounted_dev_skips_devices_and_links():
    pre, _ = plan(cfg([{"destination": "/dev", "source": "/dev", "options": ["rbind"]}],
                      devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]))
    assert not any(isinstance(s, (MakeDevice, MakeSymlink)) for s in pre)


def test_config_devices_override_defaults_and_follow_them():
    pre, _ = plan(cfg(devices=[
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o20600,
         "uid": 5, "gid": 6},
        {"path": "/dev/fuse", "type": "u", "major": 10, "minor": 229},
        {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2},
        {"path": "/dev/fifo", "type": "p"}]), userns=True)
    devs = [s for s in pre if isinstance(s, MakeDevice)]
    assert [d.path for d in devs] == ["/dev/random", "/dev/full", "/dev/tty", "/dev/zero",
                                      "/dev/urandom", "/dev/null", "/dev/fuse", "/dev/fifo"]
    assert devs[5] == MakeDevice("/dev/null", "c", 1, 3, 0o600, 5, 6, True)
    assert devs[6] == MakeDevice("/dev/fuse", "c", 10, 229, 0o666, 0, 0, True)
    # a fifo is never a host node to bind: mknod of a fifo works in a user namespace
    assert devs[7] == MakeDevice("/dev/fifo", "p", 0, 0, 0o666, 0, 0, False)


def test_invalid_device_type_is_a_config_error():
    with pytest.raises(ConfigError) as e:
        plan(cfg(devices=[{"path": "/dev/x", "type": "z"}]))
    assert "linux.devices[0].type" in str(e.value)


def test_rootfs_propagation():
    pre, post = plan(cfg(rootfsPropagation="private"))
    assert pre[0] == SetRootPropagation(C.MS_PRIVATE) and post[0].propagation == 0
    # shared cannot be set before pivot_root: rslave first, shared after the jail
    pre, post = plan(cfg(rootfsPropagation="rshared"))
    assert pre[0] == SetRootPropagation(C.MS_SLAVE | C.MS_REC)
    assert post[0].propagation == C.MS_SHARED | C.MS_REC


def test_ro_tmpfs_and_dev_are_remounted_after_the_jail():
    pre, post = plan(cfg([
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nodev"]},
        {"destination": "/data", "type": "bind", "source": "/d", "options": ["ro"]}]))
    mounts = {s.destination: s for s in pre if isinstance(s, MountFs)}
    assert mounts["/dev"].flags == NOSUID and mounts["/run"].flags == NODEV
    assert mounts["/data"].flags == C.MS_BIND | RO and mounts["/data"].remount_flags == RO
    assert post[0].readonly_mounts == (("/dev", NOSUID | RO), ("/run", NODEV | RO))


def test_cgroup_mount_readonly_unless_rw_and_cgroupns():
    ns = [{"type": "mount"}, {"type": "cgroup"}]
    pre, _ = plan(cfg([{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                        "options": ["rw", "nosuid"]}], namespaces=ns))
    assert pre[2] == MountCgroup("/sys/fs/cgroup", NOSUID, (), False, True)
    pre, _ = plan(cfg([{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}]))
    assert pre[2] == MountCgroup("/sys/fs/cgroup", 0, (), True, False)


def test_relative_bind_source_and_destination():
    pre, _ = plan(cfg([{"destination": "data", "source": "src", "options": ["bind"]}]))
    assert pre[2].destination == "/data" and pre[2].source == "/b/src"


def test_bind_type_without_bind_option_is_a_bind():
    pre, _ = plan(cfg([{"destination": "/x", "type": "bind", "source": "/y"}]))
    assert pre[2].flags == C.MS_BIND


def test_tmpcopyup_only_for_tmpfs():
    pre, _ = plan(cfg([
        {"destination": "/a", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]},
        {"destination": "/b", "type": "bind", "source": "/b", "options": ["bind", "tmpcopyup"]}]))
    assert pre[2].copyup and not pre[3].copyup


@pytest.mark.parametrize("mount,message", [
    ({"destination": "/proc/sys/x", "type": "bind", "source": "/x"}, "inside /proc"),
    ({"destination": "/proc", "type": "devpts", "source": "devpts"}, "not of type proc"),
    ({"destination": "/x", "source": "/y", "options": ["rbind", "idmap"]}, "not supported"),
    ({"destination": "/x", "type": "bind", "source": "/y",
      "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}, "not supported"),
    ({"destination": "/x", "source": "x"}, "type is missing"),
])
def test_refused_mounts(mount, message):
    with pytest.raises(ConfigError) as e:
        plan(cfg([mount]))
    assert message in str(e.value) and "mounts[0]" in str(e.value)


def test_lxcfs_style_proc_file_binds_are_allowed():
    pre, _ = plan(cfg([{"destination": "/proc/meminfo", "type": "bind", "source": "/m"}]))
    assert pre[2].destination == "/proc/meminfo"


def test_mount_namespace_is_required():
    with pytest.raises(ConfigError):
        plan(cfg(namespaces=[{"type": "pid"}]))
