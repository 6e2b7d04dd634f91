"""Attacks on the container's process setup (design.md §4): a cwd reached through
a leaked host directory fd (CVE-2024-21626) for create and `exec --cwd`,
/proc writes redirected away from procfs (CVE-2025-52881) or climbing out
with "../", and a writable host cgroupfs (CVE-2023-25809).  Method and
helpers: test_attacks_kit.py.
"""
import os

import pytest

from tests.container.realkit import call_with_files
from tests.container.test_attacks_kit import (  # noqa: F401 - fixtures
    VICTIM_FILE, any_rt, run_detached, stop, victim)

# Run from the container's cwd: whether it can climb to the host's root (which
# has /work, where pyrunc lives; the busybox rootfs has no /work).
HOST_ROOT_PROBE = ('pwd; ls; [ -d ../../../../../../../../../../work ] && echo HOST-ROOT-REACHED; '
                   'echo end')


def assert_no_host_cwd(out):
    assert VICTIM_FILE not in out, f"the process ran in the host directory:\n{out}"
    assert "HOST-ROOT-REACHED" not in out, f"the process reached the host's /:\n{out}"


# --- cwd through a leaked fd (CVE-2024-21626) -------------------------------------------------

@pytest.mark.parametrize("preserve", [0, 1])
def test_cwd_through_a_leaked_host_fd(any_rt, bundle_factory, container_id, tmp_path, victim,
                                      preserve):
    """The caller leaks fd 3, an O_PATH fd of a host directory (a shim's fd), into
    create; process.cwd is /proc/self/fd/3.  Without --preserve-fds the fd is
    closed at once; with it, the chdir refuses the magic link and create fails.

    Shown to fail: process.chdir weakened to sys.chdir(step.cwd) without
    verify_cwd (and a failed mkdir of the cwd ignored) -> with --preserve-fds 1
    the shell listed the victim's file and reached the host's /; with
    init._close_stray_fds disabled as well, without --preserve-fds too.
    (Debian's runc 1.1.5 carries the CVE-2024-21626 fix: it refuses.)
    """
    bundle = bundle_factory(args=["sh", "-c", HOST_ROOT_PROBE])
    bundle.config["process"]["cwd"] = "/proc/self/fd/3"
    bundle.write_config()
    leaked = os.open(victim, os.O_PATH | os.O_DIRECTORY)
    cid = container_id()
    flags = ["--preserve-fds", str(preserve)] if preserve else []
    try:
        with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
            r = call_with_files(any_rt, "run", *flags, "--bundle", bundle, cid,
                                stdout=out, stderr=err, fds=[leaked])
    finally:
        os.close(leaked)
        any_rt.delete(cid, force=True)
    text = (tmp_path / "out").read_text()
    if any_rt.name == "runc" and VICTIM_FILE in text:
        pytest.xfail("this runc predates the fix for CVE-2024-21626")
    assert_no_host_cwd(text)
    if r.returncode == 0:
        assert text.startswith("/"), text
    else:   # refused: by MakeCwd (a magic link) or by the chdir itself
        err = (tmp_path / "err").read_text()
        assert "/proc/self/fd/3" in err or "working directory" in err, err


def test_cwd_through_the_runtimes_own_fds(any_rt, bundle_factory, container_id):
    """cwd=/proc/self/fd/N for every small N: whatever the runtime itself holds
    open at chdir time (runc < 1.1.12 leaked a /sys/fs/cgroup fd), none is a
    way out.

    Shown to fail: the plain chdir above plus pivot_root keeping its fd of
    the host's old root open -> "cwd reached the host through the runtime's
    fds: [(4, '')]".  The plain chdir alone is not caught: pyrunc's init holds
    no host directory fd at chdir time -- the point of this test.
    """
    hits = []
    for n in range(3, 12):
        bundle = bundle_factory(args=["sh", "-c", HOST_ROOT_PROBE])
        bundle.config["process"]["cwd"] = f"/proc/self/fd/{n}"
        bundle.write_config()
        cid = container_id()
        r = any_rt.run(cid, bundle)
        any_rt.delete(cid, force=True)
        if "HOST-ROOT-REACHED" in r.stdout or VICTIM_FILE in r.stdout:
            hits.append((n, r.stdout.splitlines()[0]))
    if any_rt.name == "runc" and hits:
        pytest.xfail(f"this runc predates the CVE-2024-21626 fix: host cwd through {hits}")
    assert not hits, f"cwd reached the host through the runtime's fds: {hits}"


@pytest.mark.parametrize("preserve", [0, 1])
def test_exec_cwd_through_a_leaked_host_fd(any_rt, bundle_factory, container_id, tmp_path,
                                           victim, preserve):
    """`exec --cwd /proc/self/fd/3` with fd 3 a leaked host directory.

    Shown to fail: as test_cwd_through_a_leaked_host_fd -> with --preserve-fds 1
    (and, with _close_stray_fds disabled, without) the exec'd shell listed the
    victim's file.
    """
    bundle = bundle_factory(args=["sleep", "60"])
    cid = container_id()
    run_detached(any_rt, cid, bundle)
    leaked = os.open(victim, os.O_PATH | os.O_DIRECTORY)
    flags = ["--preserve-fds", str(preserve)] if preserve else []
    try:
        with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
            r = call_with_files(any_rt, "exec", *flags, "--cwd", "/proc/self/fd/3", cid,
                                "sh", "-c", HOST_ROOT_PROBE, stdout=out, stderr=err,
                                fds=[leaked])
    finally:
        os.close(leaked)
        stop(any_rt, cid)
    text = (tmp_path / "out").read_text()
    if any_rt.name == "runc" and VICTIM_FILE in text:
        pytest.xfail("this runc predates the fix for CVE-2024-21626 (exec --cwd)")
    assert_no_host_cwd(text)
    if r.returncode != 0:
        err = (tmp_path / "err").read_text()
        assert "/proc/self/fd/3" in err or "working directory" in err, err


# --- writes through /proc (CVE-2025-52881) ----------------------------------------------------

def _fake_proc(tmp_path):
    fake = tmp_path / "fakeproc"
    for rel in ("sys/net/ipv4/ip_forward", "sys/kernel/domainname", "self/oom_score_adj"):
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text("untouched\n")
    return fake


def _fake_files_untouched(root):
    for rel in ("sys/net/ipv4/ip_forward", "sys/kernel/domainname", "self/oom_score_adj"):
        assert (root / rel).read_text() == "untouched\n", f"the runtime wrote {rel} off procfs"


@pytest.mark.parametrize("what", ["sysctl", "oomScoreAdj"])
@pytest.mark.parametrize("how", ["bind", "tmpfs"])
def test_proc_replaced_by_a_fake(any_rt, bundle_factory, container_id, tmp_path, what, how):
    """/proc is a bind mount of a plain directory with look-alike files (or a
    tmpfs): the sysctl (or oom_score_adj) write must not land in it.  Both
    runtimes refuse to put anything but procfs on /proc; behind that, pyrunc
    also checks the directory it writes below is procfs (statfs magic).

    Shown to fail: with rootfs._bind's procfs_source() answering True *and*
    process.open_procfs's PROC_SUPER_MAGIC check removed, the bind variants
    wrote "1"/"-100" into the fake files ("the runtime wrote ... off
    procfs"); each defence alone was enough.  (The magic check by itself is
    shown by test_no_proc_mount_and_look_alike_files_in_the_image.)
    """
    fake = _fake_proc(tmp_path)
    bundle = bundle_factory(args=["true"])
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/proc"]
    if how == "bind":
        m = {"destination": "/proc", "type": "bind", "source": str(fake),
             "options": ["rbind", "rw"]}
    else:
        m = {"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}
    bundle.config["mounts"].insert(0, m)
    bundle.config["linux"]["maskedPaths"] = []
    bundle.config["linux"]["readonlyPaths"] = []
    if what == "sysctl":
        bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    else:
        bundle.config["process"]["oomScoreAdj"] = -100
    bundle.write_config()
    r = any_rt.run(container_id(), bundle)
    _fake_files_untouched(fake)
    assert r.returncode != 0
    if any_rt.name == "pyrunc":
        assert "not of type proc" in r.stderr or "not on procfs" in r.stderr, r.stderr


def test_no_proc_mount_and_look_alike_files_in_the_image(any_rt, bundle_factory, container_id):
    """No /proc mount at all, and the image ships proc/sys/net/ipv4/ip_forward as a
    plain file: the sysctl must not be "written" into the image.

    Shown to fail: open_procfs without the magic check -> "the sysctl went
    into the image's file" (it read "1ntouched").  runc 1.1.5 writes into
    the image (xfail when seen).
    """
    bundle = bundle_factory(args=["true"], files={"proc/sys/net/ipv4/ip_forward": "untouched\n"})
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/proc"]
    bundle.config["linux"]["maskedPaths"] = []
    bundle.config["linux"]["readonlyPaths"] = []
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.write_config()
    r = any_rt.run(container_id(), bundle)
    with open(os.path.join(bundle.rootfs, "proc/sys/net/ipv4/ip_forward")) as f:
        content = f.read()
    if any_rt.name == "runc" and content != "untouched\n":
        pytest.xfail("runc 1.1.5 writes sysctls to whatever /proc/sys is")
    assert content == "untouched\n", "the sysctl went into the image's file"
    assert r.returncode != 0


def test_sysctl_key_climbing_out_of_proc_sys(any_rt, bundle_factory, container_id):
    """A sysctl key with "../" in it must not reach a file outside the key's
    namespace (here kernel.domainname, harmless: the container has its own
    UTS namespace, so even a successful climb changes nothing on the host).

    Every "." of a key becomes "/", so ".." cannot survive; pyrunc also opens
    the key RESOLVE_BENEATH a procfs fd (which stops a climb above /proc/sys,
    not this one).  Shown to fail: write_sysctl weakened to turn only dots
    between name characters into slashes -> the container's domainname read
    "climbed".
    """
    key = "net.ipv4.conf.all/../../../../kernel/domainname"
    bundle = bundle_factory(args=["cat", "/proc/sys/kernel/domainname"])
    bundle.config["linux"]["sysctl"] = {key: "climbed"}
    bundle.write_config()
    with open("/proc/sys/kernel/domainname") as f:
        host_before = f.read()
    r = any_rt.run(container_id(), bundle)
    assert "climbed" not in r.stdout
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read() == host_before
    assert r.returncode != 0


# --- the host's cgroupfs (CVE-2023-25809) -------------------------------------------------------

CGROUP_PROBE = ('for d in /sys/fs/cgroup/*/; do '
                '  if mkdir "${d}pt-evil" 2>/dev/null; '
                '  then echo "MKDIR-OK $d"; rmdir "${d}pt-evil"; fi; '
                '  if [ -e "${d}cgroup.procs" ] && (echo $$ > "${d}cgroup.procs") 2>/dev/null; '
                '  then echo "WRITE-OK $d"; fi; '
                '  echo "seen $d"; '
                'done')


@pytest.mark.parametrize("options", [["nosuid", "noexec", "nodev", "relatime"],
                                     ["nosuid", "noexec", "nodev", "relatime", "ro"]],
                         ids=["no-ro-option", "ro-option"])


def test_cgroupfs_read_only_without_cgroupns(any_rt, bundle_factory, container_id, options):
    """No cgroup namespace, a `cgroup` mount without "rw": the container may not
    create cgroups or move tasks through /sys/fs/cgroup (pyrunc mounts it
    read-only unless the options say rw).

    Shown to fail: cgroupfs._ro weakened to always return 0 -> both variants
    reported MKDIR-OK and WRITE-OK for every hierarchy.  runc 1.1.5 as root
    mounts it writable without "ro" (its CVE-2023-25809 fix covers rootless
    only): xfail when seen.
    """
    bundle = bundle_factory(args=["sh", "-c", CGROUP_PROBE])
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] != "cgroup"]
    for m in bundle.config["mounts"]:
        if m["type"] == "cgroup":
            m["options"] = list(options)
    bundle.write_config()
    cid = container_id()
    r = any_rt.run(cid, bundle)
    any_rt.delete(cid, force=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("seen ") >= 2, r.stdout       # the hierarchies are there
    writable = [ln for ln in r.stdout.splitlines() if "-OK " in ln]
    if any_rt.name == "runc" and writable and "ro" not in options:
        pytest.xfail("runc 1.1.5 (root) mounts cgroupfs writable without \"ro\"")
    assert not writable, f"the container wrote the host's cgroupfs: {writable}"
