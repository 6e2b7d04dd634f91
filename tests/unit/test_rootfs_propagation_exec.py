"""BindRootfs reads mountinfo (to make a shared parent mount private) only when
SetRootPropagation may have left a mount shared."""
import pytest

from pyrunc.executor.base import Context
from pyrunc.executor.rootfs import bind_rootfs, set_root_propagation
from pyrunc.plan import mountopts as mo
from pyrunc.plan.steps import BindRootfs, SetRootPropagation
from tests.doubles import RecordingSys

MOUNTINFO = (b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
             b"30 22 0:40 / /b rw shared:5 - tmpfs tmpfs rw\n")


class Sys(RecordingSys):
    def read_file(self, path):
        self.calls.append(("read_file", (path,)))
        return MOUNTINFO


@pytest.mark.parametrize("flags, reads", [
    (mo.MS_REC | mo.MS_SLAVE, False), (mo.MS_REC | mo.MS_PRIVATE, False),
    (mo.MS_REC | mo.MS_SHARED, True), (mo.MS_SLAVE, True), (mo.MS_SHARED, True)])
def test_mountinfo_is_read_only_when_a_mount_may_be_shared(flags, reads):
    sys = Sys()
    ctx = Context(sys=sys, config=None)
    set_root_propagation(SetRootPropagation(flags), ctx)
    bind_rootfs(BindRootfs("/b/rootfs"), ctx)
    assert (("read_file", ("/proc/self/mountinfo",)) in sys.calls) == reads
    # the shared parent (/b) is made private when it was looked at
    private = [c for c in sys.of("mount") if c[1][3] == mo.MS_PRIVATE]
    assert [c[1][1] for c in private] == (["/b"] if reads else [])
