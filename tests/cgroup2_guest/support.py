"""Helpers for the cgroup v2 tests: cgroup files, and containers made through
the pyrunc CLI (never its modules), each in cgroup <session parent>/<id>."""
import os

from pyrunc.demo import default_config
from tests.container import helpers

CGROUP_ROOT = "/sys/fs/cgroup"
MiB = 1024 * 1024


def read_flat(path):
    """A flat-keyed cgroup file ("key value" lines: memory.events, cpu.stat) as a dict."""
    with open(path) as f:
        return {k: int(v) for k, v in (line.split() for line in f if line.strip())}


def read_text(path):
    with open(path) as f:
        return f.read().strip()


def own_cgroup(pid="self"):
    """The v2 cgroup path of a process ("/a/b"), from /proc/PID/cgroup."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


class Containers:
    """Bundles and a pyrunc Runtime with a private --root; deletes what it made."""

    def __init__(self, runtime, rootfs, tmp_path, parent):
        self.rt = runtime
        self.rootfs = rootfs
        self.tmp = tmp_path
        self.parent = parent
        self.ids = []

    def bundle(self, cid, args, resources=None, linux=None):
        """A bundle whose container `cid` runs `args` in cgroup <parent>/<cid>."""
        overrides = {"linux": {"cgroupsPath": f"{self.parent}/{cid}", **(linux or {})}}
        if resources:
            overrides["linux"]["resources"] = resources
        return helpers.make_bundle(self.tmp / cid, self.rootfs, default_config(rootless=False),
                                   args=args, overrides=overrides)

    def new(self, args, resources=None, linux=None):
        """(container id, bundle) for a fresh container."""
        cid = helpers.new_container_id()
        self.ids.append(cid)
        return cid, self.bundle(cid, args, resources, linux)

    def cgroup_dir(self, cid):
        return f"{CGROUP_ROOT}{self.parent}/{cid}"

    def run_kept(self, cid, bundle):
        """`pyrunc run --keep`: wait for the init to exit, keep the (stopped)
        container and so its cgroup and counters, until delete()."""
        return self.rt.run(cid, bundle, "--keep")

    def delete(self, cid):
        r = self.rt.delete(cid, force=True)
        assert r.returncode == 0, f"pyrunc delete --force {cid} failed: {r.stderr}"

    def cleanup(self):
        for cid in self.ids:   # each pyrunc call costs seconds in the guest: only if needed
            if os.path.exists(os.path.join(self.rt.root, cid)):
                self.rt.delete(cid, force=True)
