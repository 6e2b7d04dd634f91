"""Attacks on the runtime's own privileges (design.md §4): the host's interpreter
through /proc/<pid>/exe of a pyrunc process (CVE-2019-5736; CVE-2016-9962:
the waiting init must not be ptraceable), and inheritable/ambient
capabilities beyond the config (CVE-2022-29162).  Method and helpers:
test_attacks_kit.py.
"""
import ctypes
import hashlib
import os
import subprocess

import pytest

from tests.container.realkit import wait_for
from tests.container.test_attacks_kit import (  # noqa: F401 - fixtures
    any_rt, run_detached, stop)


def cap_sets(out):
    """{"CapInh": int, ...} from `grep Cap /proc/$$/status` output."""
    pairs = (ln.split() for ln in out.splitlines() if ln.startswith("Cap"))
    return {k.rstrip(":"): int(v, 16) for k, v in pairs}


CAP = {"CHOWN": 0, "NET_ADMIN": 12, "SYS_ADMIN": 21, "SYS_PTRACE": 19}


# --- the host interpreter through /proc/<pid>/exe (CVE-2019-5736, CVE-2016-9962) ---------------

# (environ and auxv are no test: the kernel lets them be read whatever dumpable is)
EXE_PROBE = ("readlink /proc/1/exe >/dev/null 2>&1 && echo LINK-OK || echo LINK-DENIED; "
             "cat /proc/1/exe >/dev/null 2>&1 && echo READ-OK || echo READ-DENIED; "
             "readlink /proc/1/cwd >/dev/null 2>&1 && echo CWD-OK || echo CWD-DENIED; "
             # opens for append and writes nothing: the open is the attack, never a write
             "if (: >> /proc/1/exe) 2>/dev/null; then echo WRITE-OK; else echo WRITE-DENIED; fi; "
             "(: >> /proc/1/exe) 2>&1 | tr ' ' _")


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _runtime_binary(rt):
    if rt.name == "runc":
        return os.path.realpath(rt.binary)
    with open(rt.binary) as f:                 # "#!<interpreter> [flags]"
        return os.path.realpath(f.readline()[2:].split()[0])


@pytest.mark.parametrize("ptrace_cap", [False, True], ids=["no-ptrace", "cap-sys-ptrace"])
def test_waiting_init_exe_is_out_of_reach(any_rt, bundle_factory, container_id, ptrace_cap):
    """While the init waits (created), a process exec'd into the container tries
    /proc/1/exe and to open it for writing (appending nothing).

    Both runtimes make the waiting init a program nobody can write (runc: a
    copy of itself; pyrunc: pyrunc-init, waiter.c, from a sealed memfd), so the
    container may read the link or even the file but never write it, even
    with CAP_SYS_PTRACE, and the runtime's binary (runc, or pyrunc's
    interpreter) is untouched -- checked with its hash.

    Shown to fail: build_plan weakened to always keep the Python init
    (init_after_start=True) -> "the waiting init runs /usr/bin/python3.11"
    for pyrunc (the write then fails only with ETXTBSY, which
    test_interpreter_held_through_proc_exe_is_not_written_after_start defeats).
    """
    bundle = bundle_factory(args=["true"])
    if ptrace_cap:
        for s in ("bounding", "effective", "permitted"):
            bundle.config["process"]["capabilities"][s].append("CAP_SYS_PTRACE")
        bundle.write_config()
    binary = _runtime_binary(any_rt)
    before = _sha256(binary)
    cid = container_id()
    r = any_rt.create(cid, bundle)
    assert r.returncode == 0, r.stderr
    try:
        exe = os.readlink(f"/proc/{any_rt.state_json(cid)['pid']}/exe")
        r = any_rt.call("exec", cid, "sh", "-c", EXE_PROBE)
        assert r.returncode == 0, r.stderr
        got = r.stdout.split()
    finally:
        stop(any_rt, cid)
    # (runc 1.1.5's is a detached read-only bind: its link reads "/")
    assert exe.startswith("/memfd:") if any_rt.name == "pyrunc" else exe != binary, \
        f"the waiting init runs {exe}"
    assert "WRITE-DENIED" in got, f"the container opened /proc/1/exe ({exe}) for writing: {got}"
    assert _sha256(binary) == before


def _private_interpreter_runtime(pyrunc, dest):
    """A wrapper that runs pyrunc on a private copy of its interpreter, so that an
    attack on the interpreter file hits the copy, never the host's python.

    The copy sits in a venv-shaped dir (pyvenv.cfg, lib -> the real venv's lib)
    so it finds the same site-packages; returns (wrapper path, copy path)."""
    with open(pyrunc) as f:
        shebang = f.readline()[2:].split()
    interp, flags = shebang[0], shebang[1:]
    venv = os.path.dirname(os.path.dirname(interp))
    os.makedirs(os.path.join(dest, "bin"))
    copy = os.path.join(dest, "bin", "python3")
    subprocess.run(["cp", os.path.realpath(interp), copy], check=True)
    if os.path.exists(os.path.join(venv, "pyvenv.cfg")):
        subprocess.run(["cp", os.path.join(venv, "pyvenv.cfg"), dest], check=True)
        os.symlink(os.path.join(venv, "lib"), os.path.join(dest, "lib"))
    wrapper = os.path.join(dest, "pyrunc")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nexec {copy} {" ".join(flags)} {pyrunc} "$@"\n')
    os.chmod(wrapper, 0o755)
    return wrapper, copy


# Holds /proc/1/exe (the waiting init's interpreter) open read-only, then keeps
# trying to reopen it for writing through its own fd, as CVE-2019-5736 did.
HOLDER = ("exec 7</proc/1/exe || exit 1; i=0; while [ $i -lt 100 ]; do "
          "if (echo PWNED-BY-CONTAINER >> /proc/self/fd/7) 2>/dev/null; "
          "then echo WROTE; break; fi; "
          "sleep 0.05; i=$((i+1)); done; echo done")


def test_interpreter_held_through_proc_exe_is_not_written_after_start(
        pyrunc, make_runtime, bundle_factory, container_id, tmp_path):
    """CVE-2019-5736 end to end, on a private copy of the interpreter: a process
    exec'd into the created container (CAP_SYS_PTRACE in its sets) opens
    /proc/1/exe read-only; after `start` no process runs the interpreter any
    more (no ETXTBSY), and it reopens the file for writing through its fd.

    The waiting init is pyrunc-init from a sealed memfd (executor/waiter.py),
    so /proc/1/exe is not the interpreter at all.  Shown to fail: build_plan
    weakened to always keep the Python init (init_after_start=True) -> the copy
    ends with PWNED-BY-CONTAINER.
    """
    wrapper, copy = _private_interpreter_runtime(pyrunc, str(tmp_path / "py"))
    rt = make_runtime(wrapper, name="pyrunc-copy")
    bundle = bundle_factory(args=["sleep", "30"])
    bundle.config["root"]["readonly"] = False
    for s in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][s].append("CAP_SYS_PTRACE")
    bundle.write_config()
    before = _sha256(copy)
    cid = container_id()
    r = rt.create(cid, bundle)
    assert r.returncode == 0, r.stderr
    try:
        r = rt.call("exec", "-d", cid, "sh", "-c", f"({HOLDER}) > /holder.out 2>&1",
                    detached_io=True)
        assert r.returncode == 0, r.stderr
        out = os.path.join(bundle.rootfs, "holder.out")
        assert wait_for(lambda: os.path.exists(out), timeout=5)
        assert rt.start(cid).returncode == 0
        wait_for(lambda: "done" in open(out).read(), timeout=10)
    finally:
        stop(rt, cid)
    assert _sha256(copy) == before, "the container rewrote the runtime's interpreter"


# Spins over /proc inside the container for SECONDS, printing every process whose
# /proc/<pid>/exe is a python: with CAP_SYS_PTRACE it may read the link of a
# non-dumpable process, so a Python `exec` helper would show for as long as it runs.
WATCHER_C = r"""
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    time_t end = time(NULL) + atoi(argv[1]);
    long rounds = 0;
    printf("start\n");
    fflush(stdout);
    while (time(NULL) < end) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char path[300], link[512];
            ssize_t n;
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            snprintf(path, sizeof(path), "/proc/%s/exe", e->d_name);
            n = readlink(path, link, sizeof(link) - 1);
            if (n > 0) {
                link[n] = 0;
                if (strstr(link, "python"))
                    printf("PYTHON %s %s\n", e->d_name, link);
            }
        }
        if (d)
            closedir(d);
        rounds++;
    }
    printf("done %ld\n", rounds);
    return 0;
}
"""


def test_no_exec_process_is_ever_the_interpreter(pyrunc, make_runtime, bundle_factory,
                                                 container_id, tmp_path):
    """CVE-2019-5736 against `exec`: a container with CAP_SYS_PTRACE watches
    /proc for a process whose exe is the host's interpreter while twenty
    `exec`s run.  pyrunc-init forks each program into the container's pid
    namespace (plan/execspawn.py): no process there is ever Python.

    Shown to fail: shape_for_spawn weakened to return the steps unchanged (the
    Python helper forked into the pid namespace, as before) -> the watcher
    printed "PYTHON <pid> /usr/bin/python3.11" for the exec helpers.
    """
    cc = "musl-gcc" if subprocess.run(["sh", "-c", "command -v musl-gcc"],
                                      capture_output=True).returncode == 0 else "gcc"
    src = tmp_path / "watch.c"
    src.write_text(WATCHER_C)
    rt = make_runtime(pyrunc)
    bundle = bundle_factory(args=["sleep", "60"])
    subprocess.run([cc, "-static", "-O2", "-o", os.path.join(bundle.rootfs, "watch"), str(src)],
                   check=True)
    for s in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][s].append("CAP_SYS_PTRACE")
    bundle.config["root"]["readonly"] = False
    bundle.write_config()
    cid = container_id()
    run_detached(rt, cid, bundle)
    out = os.path.join(bundle.rootfs, "watch.out")
    try:
        r = rt.call("exec", "-d", cid, "sh", "-c", "/watch 4 > /watch.out", detached_io=True)
        assert r.returncode == 0, r.stderr
        assert wait_for(lambda: os.path.exists(out) and "start" in open(out).read(), timeout=5)
        for _ in range(20):
            r = rt.call("exec", cid, "true")
            assert r.returncode == 0, r.stderr
        assert wait_for(lambda: "done" in open(out).read(), timeout=10)
    finally:
        stop(rt, cid)
    text = open(out).read()
    assert "PYTHON" not in text, text
    assert int(text.split("done")[1]) > 100, "the watcher hardly ran"


# --- inheritable and ambient capabilities (CVE-2022-29162) ----------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2


def _leak_caps():
    """preexec_fn: the runtime's caller has inheritable CHOWN, NET_ADMIN, SYS_ADMIN
    and ambient CHOWN, NET_ADMIN -- all of which survive its execve of the runtime."""
    import prctl
    for name in ("chown", "net_admin", "sys_admin"):
        setattr(prctl.cap_inheritable, name, True)
    for cap in (CAP["CHOWN"], CAP["NET_ADMIN"]):
        if _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_CAP_AMBIENT_RAISE")


def _caps_config(bundle, inheritable):
    caps = bundle.config["process"]["capabilities"]
    for s in ("bounding", "effective", "permitted"):
        caps[s] = sorted(set(caps[s]) | {"CAP_CHOWN"})
    caps["inheritable"] = list(inheritable)
    caps["ambient"] = []
    bundle.write_config()


@pytest.mark.parametrize("inheritable", [[], ["CAP_CHOWN"]], ids=["inh-empty", "inh-chown"])
def test_callers_inheritable_and_ambient_caps_do_not_leak(any_rt, bundle_factory,
                                                          container_id, inheritable):
    """The config asks for no ambient caps and the given inheritable ones; the
    caller of the runtime has more of both.  The container's process must get
    exactly the config's: CapInh = config, CapAmb = 0, and none of the leaked
    caps in CapEff (for root, inheritable caps become effective at execve).

    Shown to fail: identity.set_capabilities weakened to OR the current
    inheritable set into capset() -> "CapInh 0x201001, want 0x0" (both
    variants); weakened instead to skip PR_CAP_AMBIENT_CLEAR_ALL ->
    only the inh-chown variant failed (CapAmb = CHOWN): with an empty
    inheritable set the kernel clears ambient by itself.
    """
    bundle = bundle_factory(args=["sh", "-c", "grep Cap /proc/$$/status"])
    _caps_config(bundle, inheritable)
    cid = container_id()
    r = subprocess.run(any_rt.argv("run", "--bundle", bundle, cid), capture_output=True,
                       text=True, timeout=60, preexec_fn=_leak_caps)
    any_rt.delete(cid, force=True)
    assert r.returncode == 0, r.stderr
    got = cap_sets(r.stdout)
    want_inh = sum(1 << CAP[c[4:]] for c in inheritable)
    assert got["CapInh"] == want_inh, f"CapInh {got['CapInh']:#x}, want {want_inh:#x}"
    assert got["CapAmb"] == 0, f"CapAmb {got['CapAmb']:#x}"
    leaked = (1 << CAP["NET_ADMIN"]) | (1 << CAP["SYS_ADMIN"])
    assert got["CapEff"] & leaked == 0, f"CapEff {got['CapEff']:#x}"
    assert got["CapPrm"] & leaked == 0, f"CapPrm {got['CapPrm']:#x}"


def test_exec_cap_never_goes_inheritable(any_rt, bundle_factory, container_id):
    """`exec --cap CAP_NET_ADMIN` adds it to bounding/effective/permitted, never
    to inheritable; the caller's leaked inheritable caps do not reach it either.

    Shown to fail: exec_into.process_from_flags weakened to add --cap caps to
    the inheritable set -> "exec --cap went inheritable: 0x1000".
    """
    bundle = bundle_factory(args=["sleep", "60"])
    _caps_config(bundle, [])
    cid = container_id()
    run_detached(any_rt, cid, bundle)
    try:
        r = subprocess.run(any_rt.argv("exec", "--cap", "CAP_NET_ADMIN", cid, "sh", "-c",
                                       "grep Cap /proc/$$/status"),
                           capture_output=True, text=True, timeout=60, preexec_fn=_leak_caps)
    finally:
        stop(any_rt, cid)
    assert r.returncode == 0, r.stderr
    got = cap_sets(r.stdout)
    assert got["CapInh"] == 0, f"exec --cap went inheritable: {got['CapInh']:#x}"
    assert got["CapAmb"] == 0, f"CapAmb {got['CapAmb']:#x}"
    assert got["CapEff"] & (1 << CAP["NET_ADMIN"]), "exec --cap was not applied at all"
    assert got["CapEff"] & (1 << CAP["SYS_ADMIN"]) == 0
