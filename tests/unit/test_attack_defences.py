"""Defences of design.md §4 that a real container cannot show by itself.

The container-level attacks are in tests/container/test_attacks_*.py.  Here:

- the forked child of create/exec (init.child_main) must be non-dumpable
  before it does anything else (CVE-2016-9962, CVE-2019-5736): a container
  process could otherwise open /proc/<pid>/exe of it -- the host's Python
  interpreter -- in the moment between fork and the namespaces.  Shown to
  fail: with the prctl(PR_SET_DUMPABLE, 0) moved after sync.expect("go") in a
  scratch copy of the package, both tests failed.
- a mount destination is checked against /proc where it *resolved*, not as
  text (an image symlink p -> proc).  Shown to fail: with mounts._check_proc
  reduced to `return`, the refusal tests failed ("DID NOT RAISE").
- the symlink-swap race on a mount target (CVE-2021-30465), as the double
  sees it: the mount goes to /proc/self/fd/N of the fd openat2 resolved with
  RESOLVE_IN_ROOT, and a target that resolves elsewhere afterwards (the swap)
  is an error before anything else is done to the new mount.  Shown to fail:
  with mounts.Target.reopen's comparison removed, "DID NOT RAISE".  The real
  race is in tests/container/test_attacks_mounts.py; test_rootfs_exec.py pins
  the exact call sequences.
"""
import json
import os

import pytest

from pyrunc import syscalls
from pyrunc.errors import RuntimeFailure
from pyrunc.executor.base import Context
from pyrunc.plan.steps import MountFs, Plan
from tests.doubles import RecordingSys
from tests.unit.test_rootfs_exec import FILE, ROOT, Sys, fd, run


class ProbeSync:
    """Stands in for the sync channel: at expect("go") -- before any namespace
    or rootfs step -- records what the test wants to know, then stops the child."""

    def __init__(self, fd, sys):
        self.fd = fd
        self.sys = sys
        self.seen = {}

    def fileno(self):
        return self.fd

    def expect(self, kind):
        import prctl
        self.seen["dumpable_at"] = kind
        self.seen["dumpable"] = prctl.get_dumpable()
        calls = getattr(self.sys, "calls", None)
        if calls is not None:
            self.seen["calls"] = [[c[0], list(c[1])] for c in calls]
        raise RuntimeError("stop here")

    def send(self, kind, **fields):
        os.write(self.fd, json.dumps(self.seen).encode())

    def close(self):
        pass


def _child_main_in_a_fork(sys):
    """Run init.child_main in a forked child (it closes fds and _exits); return
    what ProbeSync saw."""
    from pyrunc.executor.init import child_main
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            ctx = Context(sys=sys, config=None)
            child_main(Plan(()), ctx, ProbeSync(w, sys), 0)
        finally:
            os._exit(99)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def test_child_is_non_dumpable_before_anything_else_real():
    seen = _child_main_in_a_fork(syscalls)
    assert seen["dumpable_at"] == "go"
    assert seen["dumpable"] == 0, f"dumpable while waiting for go: {seen['dumpable']}"


def test_non_dumpable_is_the_first_call():
    sys = RecordingSys()
    seen = _child_main_in_a_fork(sys)
    assert seen["calls"][:1] == [["prctl", [syscalls.C.PR_SET_DUMPABLE, 0]]], seen["calls"]
    raised = [c for c in seen["calls"]
              if c[0] == "prctl" and c[1][0] == syscalls.C.PR_SET_DUMPABLE and c[1][1] != 0]
    assert not raised


# --- mount destinations that resolve into /proc ----------------------------------------------

BIND = RecordingSys.C.MS_BIND


class ProcSys(Sys):
    def __init__(self, source_magic=0):
        super().__init__()
        self.source_magic = source_magic

    def __getattr__(self, name):
        if name == "fstatfs_magic":
            return lambda fd: self.source_magic
        return super().__getattr__(name)


def _bind_to(dest, resolved, source_is_file=False, source_magic=0):
    """A bind of /host/src onto `dest`, whose target fd (102) resolves to `resolved`."""
    sys = ProcSys(source_magic)
    sys.locations = {102: "/r" + resolved}
    if source_is_file:
        sys.stats[101] = FILE
    run(MountFs(dest, "/host/src", "bind", BIND, "", (), 0), sys,
        extra={"root_location": "/r"})
    return sys


@pytest.mark.parametrize("resolved", ["/proc/1", "/proc/self/fd", "/proc/sys"])
def test_bind_resolving_inside_proc_is_refused(resolved):
    # dest "/p/x" is not /proc as text; the image's p -> proc makes it so
    with pytest.raises(RuntimeFailure, match="inside /proc"):
        _bind_to("/p/x", resolved)


def test_bind_resolving_to_proc_itself_needs_a_procfs_source():
    with pytest.raises(RuntimeFailure, match="not of type proc"):
        _bind_to("/p", "/proc")
    sys = _bind_to("/p", "/proc", source_magic=RecordingSys.C.PROC_SUPER_MAGIC)
    assert len(sys.mounts()) == 1


def test_allowed_proc_files_and_ordinary_targets_still_mount():
    assert len(_bind_to("/x", "/proc/meminfo", source_is_file=True).mounts()) == 1
    assert len(_bind_to("/data", "/data").mounts()) == 1
    assert len(_bind_to("/procfoo", "/procfoo").mounts()) == 1


# --- the mount-target swap, as the double sees it -------------------------------------------

IN_ROOT = RecordingSys.C.RESOLVE_IN_ROOT | RecordingSys.C.RESOLVE_NO_MAGICLINKS
O_PATH_DIR = os.O_PATH | os.O_DIRECTORY


def test_bind_mounts_on_the_fd_resolved_in_root():
    sys = Sys()
    run(MountFs("/vol/x", "/host/src", "bind", BIND, "", (), 0), sys)
    resolved = sys.calls.index(("openat2", (ROOT, "vol/x", O_PATH_DIR, 0, IN_ROOT)))
    mount = sys.calls.index(("mount", (fd(101), fd(102), "bind", BIND, None)))
    assert resolved < mount      # fd 102 is the one openat2 returned


def test_target_swapped_after_resolving_is_refused():
    sys = Sys()
    # the fd we mounted on was vol/d; re-resolving vol/x now gives the victim
    sys.locations = {102: "/r/vol/d", 103: "/r/tmp/victim"}
    with pytest.raises(RuntimeFailure, match="moved"):
        run(MountFs("/vol/x", "/host/src", "bind", BIND | RecordingSys.C.MS_RDONLY, "",
                    (RecordingSys.C.MS_PRIVATE,), 0), sys)
    assert len(sys.mounts()) == 1, "propagation or remount went to the swapped target"
