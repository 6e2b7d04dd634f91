"""Attacks on mount targets (design.md §4): symlinks and symlink swaps that try to
make the runtime mount or create outside the rootfs (CVE-2019-18837,
CVE-2021-30465, CVE-2024-45310), and destinations that reach into /proc
through the image.  Method and helpers: test_attacks_kit.py.
"""
import os
import time

import pytest

from tests.container.test_attacks_kit import (  # noqa: F401 - fixtures
    SEEN, any_rt, assert_seen_clean, assert_untouched, host_mounts_under, link_to, rt, victim,
    watch_victim)


@pytest.mark.parametrize("form", ["absolute", "relative"])
@pytest.mark.parametrize("kind", ["dir", "file"])
def test_bind_target_through_symlink_stays_inside(any_rt, bundle_factory, container_id,
                                                  tmp_path, victim, form, kind):
    """CVE-2019-18837: /escape -> the host victim; a bind mount onto /escape (or a file
    below it) resolves inside the rootfs.

    Shown to fail: mounts.Target.path weakened to the string rootfs+destination
    (an in-root mkdir, then mount(2) on the path string, as runc did before
    CVE-2021-30465) -> dir variants: "a mount escaped onto the victim: seen:
    payload"; file variants: create failed (the host file did not exist).
    """
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("from the volume\n")
    bundle = bundle_factory(args=["sh", "-c", f"{SEEN}; ls /escape"])
    os.symlink(link_to(victim, form), os.path.join(bundle.rootfs, "escape"))
    if kind == "dir":
        m = {"destination": "/escape", "type": "bind", "source": str(src),
             "options": ["rbind", "rw"]}
    else:
        m = {"destination": "/escape/payload", "type": "bind",
             "source": str(src / "payload"), "options": ["bind", "rw"]}
    bundle.config["mounts"].append(m)
    watch_victim(bundle, victim)
    bundle.config["root"]["readonly"] = False
    bundle.write_config()
    r = any_rt.run(container_id(), bundle)
    assert_untouched(victim)
    assert r.returncode == 0, r.stderr
    assert_seen_clean(r.stdout)
    assert "payload" in r.stdout.split(), "the bind is not where the container looks"


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_nested_destination_through_symlinked_parent(any_rt, bundle_factory, container_id,
                                                     victim, form):
    """A symlink in the middle of the destination (/a -> victim, dest /a/b/c): the
    missing b/c are made inside the rootfs (mkdir -p through fds), not on the host.

    Shown to fail: paths.mkdir_all_in_root weakened to os.makedirs(rootfs +
    dest) first -> "the host directory changed: ['b', ...]"; with the string
    mount target instead, create failed.
    """
    bundle = bundle_factory(args=["sh", "-c", SEEN])
    os.symlink(link_to(victim, form), os.path.join(bundle.rootfs, "a"))
    bundle.config["mounts"].append({"destination": "/a/b/c", "type": "tmpfs",
                                    "source": "tmpfs", "options": ["size=1m"]})
    watch_victim(bundle, victim)
    bundle.config["root"]["readonly"] = False
    bundle.write_config()
    r = any_rt.run(container_id(), bundle)
    assert_untouched(victim)
    assert r.returncode == 0, r.stderr
    assert_seen_clean(r.stdout)


# A container that flips /vol/x between a symlink to a directory inside the volume
# and a symlink climbing out to the victim, each flip one atomic rename (mv -T).
RACER = ('cd /vol; mkdir -p d; echo racing; while :; do ln -s d t1; mv -T t1 x; '
         'ln -s {evil} t2; mv -T t2 x; done')


def test_symlink_swap_race_on_mount_target(rt, make_runtime, bundle_factory, container_id,
                                           tmp_path, victim):
    """CVE-2021-30465: while container A flips a path in a shared volume between a
    safe symlink and one pointing at the host, container B is created again and
    again with a bind mount onto that path.  B either mounts inside its rootfs
    or fails ("mount target moved"); the host victim never gets the mount.

    Best effort (a race): 25 creates.  The mount is on /proc/self/fd/N of the
    fd the target resolved to, and re-resolved after, so there is no window;
    tests/unit/test_attack_defences.py shows that ordering with the double.
    Shown to fail: with mounts.Target.path weakened to the string path (as in
    the first test) a create of B bound onto the victim within the 25 in each
    of 4 runs ("a mount escaped onto the victim: seen: payload").  With the
    real code some creates fail with "mount target moved ... while
    mounting": the flip was caught between resolving and re-checking.
    """
    vol = tmp_path / "vol"
    vol.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("x\n")
    # from the volume's host location, ../ up to / and down to the victim
    evil = "../" * 12 + str(victim).lstrip("/")
    racer = bundle_factory(args=["sh", "-c", RACER.format(evil=evil)], name="racer")
    racer.config["mounts"].append({"destination": "/vol", "type": "bind", "source": str(vol),
                                   "options": ["rbind", "rw"]})
    racer.write_config()
    a = container_id()
    r = rt.run(a, racer, "-d")
    assert r.returncode == 0, r.stderr
    try:
        deadline = time.monotonic() + 5
        while not os.path.lexists(vol / "x") and time.monotonic() < deadline:
            time.sleep(0.01)
        victim_bundle = bundle_factory(args=["sh", "-c", SEEN], name="b")
        victim_bundle.config["mounts"] += [
            {"destination": "/vol", "type": "bind", "source": str(vol), "options": ["rbind"]},
            {"destination": "/vol/x", "type": "bind", "source": str(src),
             "options": ["rbind"]}]
        watch_victim(victim_bundle, victim)
        victim_bundle.config["root"]["readonly"] = False
        victim_bundle.write_config()
        outcomes = {"ok": 0, "refused": 0}
        for _ in range(25):
            b = container_id()
            r = rt.run(b, victim_bundle)
            outcomes["ok" if r.returncode == 0 else "refused"] += 1
            rt.delete(b, force=True)
            assert not host_mounts_under(victim), "B's bind mount landed on the host"
            if r.returncode == 0:
                assert_seen_clean(r.stdout)
            else:   # "mount target moved ..." or a path that vanished mid-flip
                assert "Traceback" not in r.stderr and r.stderr.startswith("pyrunc: "), r.stderr
    finally:
        rt.kill(a, "KILL")
        deadline = time.monotonic() + 5
        while rt.delete(a).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert_untouched(victim)
    assert outcomes["ok"] + outcomes["refused"] == 25


# --- mount destinations that alias /proc through the image ------------------------------------

PROC_REPORT = ("grep ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6 | sed 's/^/procsys:/'; "
               "[ -w /proc/sys/kernel/core_pattern ] && echo CORE-PATTERN-WRITABLE; "
               "echo keys:$(stat -c %t:%T /proc/keys)")


@pytest.mark.parametrize("dest", ["/p/1", "/p/self"])
def test_bind_into_proc_through_an_image_symlink(any_rt, bundle_factory, container_id, tmp_path,
                                                 dest):
    """The image has p -> proc; the config binds a directory at /p/1 (or /p/self):
    textually not in /proc, but it resolves to the init's /proc/1.  Every
    later /proc/self/fd/N then goes through the bundle's look-alike fd/ dir,
    so masks and the read-only /proc/sys would land on /tmp instead -- and a
    writable /proc/sys lets root in the container write the host's
    kernel.core_pattern.  Checked with mountinfo, stat and access(2) only.

    Found by this test: pyrunc checked destinations against /proc only as
    text (plan/rootfs.py); the check now also runs where the target resolved
    (mounts._check_proc), as runc checks its securejoin'ed path.  Before
    the fix: CORE-PATTERN-WRITABLE, /proc/sys not a mount, masks on /tmp.
    runc 1.1.5 refuses both.
    """
    fake = tmp_path / "fakepid"
    (fake / "fd").mkdir(parents=True)
    for n in range(64):
        os.symlink("/tmp", fake / "fd" / str(n))
    bundle = bundle_factory(args=["sh", "-c", PROC_REPORT])
    os.symlink("proc", os.path.join(bundle.rootfs, "p"))
    bundle.config["mounts"].append({"destination": dest, "type": "bind",
                                    "source": str(fake), "options": ["rbind", "rw"]})
    bundle.write_config()
    r = any_rt.run(container_id(), bundle)
    if r.returncode != 0:
        assert "inside /proc" in r.stderr, r.stderr
        return
    # (read by child processes of the shell: /proc/self of pid 1 is the fake)
    assert "CORE-PATTERN-WRITABLE" not in r.stdout, f"/proc/sys is writable:\n{r.stdout}"
    report = dict(ln.split(":", 1) for ln in r.stdout.splitlines() if ":" in ln)
    assert report.get("procsys", "").startswith("ro"), f"/proc/sys is writable: {r.stdout}"
    assert report.get("keys") == "1:3", f"/proc/keys is not masked: {r.stdout}"
