"""Attacks through /dev and /proc paths of the image (design.md §4): /dev, /dev/pts,
/dev/shm, /proc, /sys as symlinks to the host, a symlinked maskedPaths
entry, a swapped /dev/null as the mask source (CVE-2025-31133) and a
symlinked /dev/console (CVE-2025-52565).  Method and helpers:
test_attacks_kit.py.
"""
import os
import subprocess

import pytest

from tests.container.test_console_real import ConsoleReceiver
from tests.container.test_attacks_kit import (  # noqa: F401 - fixtures
    SEEN, VICTIM_FILE, any_rt, assert_seen_clean, assert_untouched, link_to, no_dev_tmpfs, victim,
    watch_victim)


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_dev_itself_a_symlink_to_the_host(any_rt, bundle_factory, container_id, victim, form):
    """The image's /dev -> the host victim: the /dev tmpfs, devpts, shm, mqueue and
    every device node are made inside the rootfs.

    Shown to fail: rootfs._make_device weakened to mknod(rootfs + path) ->
    "the host directory changed: [..., 'null']"; paths.mkdir_all_in_root
    weakened to os.makedirs(rootfs + path) -> [..., 'mqueue', 'pts', 'shm'].
    runc 1.1.5 makes /dev/fd, /dev/stdin, ... through the symlink on the host
    (xfail when seen).
    """
    bundle = bundle_factory(args=["sh", "-c", "ls /dev/null /dev/pts/ptmx"])
    dev = os.path.join(bundle.rootfs, "dev")
    os.rmdir(dev)
    os.symlink(link_to(victim, form), dev)
    r = any_rt.run(container_id(), bundle)
    if any_rt.name == "runc" and sorted(os.listdir(victim)) != [VICTIM_FILE]:
        # it makes /dev/fd, /dev/stdin, ... with os.Symlink(rootfs + "/dev/fd")
        pytest.xfail(f"runc 1.1.5 created {sorted(os.listdir(victim))} through the "
                     "image's /dev symlink on the host")
    assert_untouched(victim)
    if any_rt.name == "pyrunc" and r.returncode != 0:
        # masking checks /dev/null with no symlink on the way: a refusal, not an escape
        assert "symbolic links" in r.stderr, r.stderr
    else:
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["pts", "shm", "mqueue"])
@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_dev_subdir_a_symlink_to_the_host(any_rt, bundle_factory, container_id, victim, form,
                                          name):
    """No /dev tmpfs in the config, and the image's /dev/pts (/dev/shm, /dev/mqueue)
    -> the host victim: devpts/tmpfs/mqueue are mounted inside the rootfs.

    Shown to fail: the string mount target of test_attacks_mounts.py ->
    "a mount escaped onto the victim: seen: ptmx" (devpts), "seen:" (a tmpfs
    or mqueue hiding the victim's file).
    """
    bundle = bundle_factory(args=["sh", "-c", f"ls -d /dev/{name}; {SEEN}"])
    no_dev_tmpfs(bundle)
    watch_victim(bundle, victim)
    bundle.write_config()
    os.symlink(link_to(victim, form), os.path.join(bundle.rootfs, "dev", name))
    r = any_rt.run(container_id(), bundle)
    assert_untouched(victim)
    assert r.returncode == 0, r.stderr
    assert_seen_clean(r.stdout)


@pytest.mark.parametrize("where", ["proc", "sys"])
def test_proc_or_sys_a_symlink_is_refused(any_rt, bundle_factory, container_id, victim, where):
    """CVE-2019-19921: procfs/sysfs only ever go on a plain directory.  The image's
    /proc -> the host victim must fail create (runc: "must be mounted on
    ordinary directory"), not mount procfs elsewhere.

    Shown to fail: rootfs._special weakened to mnt.dir_target (symlinks followed
    in-root) -> procfs/sysfs went where the link led (inside the rootfs) and
    create failed only later, at the read-only /proc/bus or the masked
    /sys/firmware, without "ordinary directory" in the error.
    """
    bundle = bundle_factory(args=["true"])
    path = os.path.join(bundle.rootfs, where)
    os.rmdir(path)
    os.symlink(str(victim), path)
    r = any_rt.run(container_id(), bundle)
    assert_untouched(victim)
    assert r.returncode != 0, "create must refuse"
    assert "ordinary directory" in r.stderr, r.stderr


def test_masked_path_that_is_a_symlink(any_rt, bundle_factory, container_id):
    """maskedPaths entry /etc/masked -> /etc/precious: masking must not land on the
    file the image points it at (pyrunc refuses the symlink; create fails).

    Shown to fail: jail._open_path weakened to follow symlinks -> /etc/precious
    read back empty ("the mask followed the symlink").
    runc 1.1.5 binds /dev/null through the symlink (xfail when seen).
    """
    bundle = bundle_factory(args=["cat", "/etc/precious"], files={"etc/precious": "kept\n"})
    os.symlink("/etc/precious", os.path.join(bundle.rootfs, "etc", "masked"))
    bundle.config["linux"]["maskedPaths"] = ["/etc/masked"]
    bundle.write_config()
    r = any_rt.run(container_id(), bundle)
    if any_rt.name == "runc" and r.returncode == 0 and r.stdout == "":
        pytest.xfail("runc 1.1.5 masks through a symlinked maskedPaths entry")
    if r.returncode == 0:
        assert r.stdout == "kept\n", "the mask followed the symlink"
    else:
        assert "symlink" in r.stderr or "symbolic link" in r.stderr, r.stderr


# --- /dev/null as the mask source (CVE-2025-31133) -----------------------------------------

@pytest.mark.parametrize("fake", ["file", "symlink"])
def test_swapped_dev_null_is_refused_as_mask_source(any_rt, bundle_factory, container_id,
                                                    tmp_path, fake):
    """/dev is bound from a directory the attacker filled: null is a regular file
    (or a symlink to a file the container wants writable).  Masking /etc/secret
    with "/dev/null" would bind the attacker's file over it; pyrunc checks the
    inode is the char device 1:3 and refuses.

    Shown to fail: jail._dev_null weakened to skip the S_ISCHR/rdev check ->
    create succeeded and /etc/secret read "FAKE NULL" ("masked with the fake").
    runc 1.1.5 predates the fix (xfail when seen).
    """
    fakedev = tmp_path / "fakedev"
    fakedev.mkdir()
    (fakedev / "decoy").write_text("FAKE NULL\n")
    if fake == "file":
        (fakedev / "null").write_text("FAKE NULL\n")
    else:
        os.symlink("/dev/decoy", fakedev / "null")
    bundle = bundle_factory(args=["sh", "-c", "cat /etc/secret; echo end"],
                            files={"etc/secret": "s3cret\n"})
    bundle.config["mounts"] = [m for m in bundle.config["mounts"]
                               if not m["destination"].startswith("/dev")]
    bundle.config["mounts"].append({"destination": "/dev", "type": "bind",
                                    "source": str(fakedev), "options": ["rbind", "rw"]})
    bundle.config["linux"]["maskedPaths"] = ["/etc/secret"]
    bundle.config["linux"]["readonlyPaths"] = []
    bundle.write_config()
    # stdin a pipe, not /dev/null: the stdio reopen step would refuse the fake
    # first (it checks the device too); this test is about the mask source
    r = any_rt.run(container_id(), bundle, stdin=subprocess.PIPE)
    if any_rt.name == "runc" and "FAKE NULL" in r.stdout:
        pytest.xfail("runc 1.1.5 masks with whatever /dev/null is (CVE-2025-31133)")
    assert "FAKE NULL" not in r.stdout, "masked with the fake /dev/null"
    assert "s3cret" not in r.stdout, "the path was left unmasked"
    assert r.returncode != 0
    if any_rt.name == "pyrunc":
        assert "not the char device 1:3" in r.stderr or "symlink" in r.stderr, r.stderr
    assert (fakedev / "decoy").read_text() == "FAKE NULL\n"


# --- /dev/console (CVE-2025-52565) ------------------------------------------------------------

@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_console_symlink_to_a_host_file(any_rt, bundle_factory, container_id, tmp_path, victim,
                                        form):
    """The image's /dev/console -> a host file, terminal: true.  pyrunc mounts the
    console before pivot_root, so following the link would bind the pty over
    the host file; it refuses a /dev/console that is not a file or device.

    Shown to fail: console.bind_console weakened to open the string path
    rootfs/dev/console (following the link to the host) -> create succeeded
    with the pty bound over the victim file in the init's mount namespace
    ("create must refuse"; the host's own mount table never shows such a
    mount).  runc 1.1.5 binds after pivot_root, inside the container, so
    the host side holds for it too.
    """
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    try:
        bundle = bundle_factory(args=["sh", "-c", "tty"])
        bundle.config["process"]["terminal"] = True
        no_dev_tmpfs(bundle)
        bundle.write_config()
        target = link_to(victim, form) + "/" + VICTIM_FILE
        os.symlink(target, os.path.join(bundle.rootfs, "dev", "console"))
        cid = container_id()
        try:
            r = any_rt.create(cid, bundle, "--console-socket", receiver.path)
            assert_untouched(victim)
            if any_rt.name == "pyrunc":
                assert r.returncode != 0, "create must refuse"
                assert "/dev/console" in r.stderr, r.stderr
        finally:
            any_rt.delete(cid, force=True)
        assert_untouched(victim)
    finally:
        receiver.close()
