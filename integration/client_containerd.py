"""containerd 1.6 + ctr, private to the session.

containerd runs with its own config (root, state, sockets under the session
dir; the CRI and /opt plugins disabled).  Containers run through the
io.containerd.runc.v2 shim, with `--runc-binary` naming the runtime and
`--runc-root` a per-runtime state root under the session dir.
dockerd reuses this containerd (`--containerd`) in its own namespace.
"""
import os

from integration import hostenv
from integration.daemon import Daemon, run, runtime_entries, socket_ready
from integration.images import oci_archive

NAMESPACE = "pyrunc-it"
IMAGE = "docker.io/pyrunc/busybox:it"

_CONFIG = """\
version = 2
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
"""

# Paths outside our dir that containerd and its shims create: shim sockets
# live in /run/containerd/s whatever the state dir is.
HOST_PATHS = ["/run/containerd", "/run/containerd/s"]


class Containerd:
    def __init__(self, session_dir, runtimes):
        self.dir = os.path.join(session_dir, "containerd")
        os.makedirs(self.dir, exist_ok=True)
        self.address = os.path.join(session_dir, "containerd.sock")
        self.runtimes = runtimes                      # name -> binary
        self.fifo_dir = os.path.join(self.dir, "fifo")
        os.makedirs(self.fifo_dir, exist_ok=True)
        self.host_paths = hostenv.HostPaths(HOST_PATHS)
        config = os.path.join(self.dir, "config.toml")
        with open(config, "w") as f:
            f.write(_CONFIG.format(dir=self.dir, sock=self.address))
        self.daemon = Daemon("containerd", ["containerd", "--config", config],
                             os.path.join(self.dir, "containerd.log"))
        # a crashed earlier session may have left container cgroups: not ours
        self.base_cgroups = set(hostenv.cgroup_leaves(NAMESPACE))
        try:
            self.daemon.wait_ready(lambda: socket_ready(self.address)() and
                                   run(["ctr", "-a", self.address, "version"],
                                       timeout=5).returncode == 0)
        except BaseException:
            self.daemon.stop()
            raise

    # --- commands ----------------------------------------------------------------
    def ctr(self, *args, timeout=60, check=False, namespace=NAMESPACE):
        return run(["ctr", "-a", self.address, "-n", namespace, *args],
                   timeout=timeout, check=check)

    def argv(self, *args, namespace=NAMESPACE):
        return ["ctr", "-a", self.address, "-n", namespace, *args]

    def exec_argv(self, *args):
        """`ctr task exec ARGS` with our fifo dir: ctr leaves a detached
        exec's fifos behind, in /run/containerd/fifo by default."""
        return self.argv("task", "exec", "--fifo-dir", self.fifo_dir, *args)

    def exec(self, *args, timeout=60):
        return run(self.exec_argv(*args), timeout=timeout)

    def runc_root(self, runtime):
        return os.path.join(self.dir, f"{runtime}-root")

    def runtime_flags(self, runtime):
        """What `ctr run` needs to run a container under `runtime`."""
        return ["--runc-binary", self.runtimes[runtime], "--runc-root", self.runc_root(runtime),
                "--fifo-dir", self.fifo_dir]

    def import_image(self, rootfs, session_dir):
        archive = oci_archive(rootfs, os.path.join(session_dir, "busybox-oci.tar"), IMAGE)
        self.ctr("image", "import", archive, check=True)
        # the daemon's own mounts (dockerd's data-root bind, podman's overlay
        # home): only mounts beyond these are a container's
        self.base_mounts = set(hostenv.mounts_under(self.dir))

    def bundle(self, cid, namespace=NAMESPACE):
        """The shim's bundle dir for a task (its log.json is pyrunc's --log)."""
        return os.path.join(self.dir, "state", "io.containerd.runtime.v2.task", namespace, cid)

    def task_pid(self, cid):
        r = self.ctr("task", "ls")
        for line in r.stdout.splitlines()[1:]:
            parts = line.split()
            if parts and parts[0] == cid:
                return int(parts[1])
        return None

    def task_status(self, cid):
        r = self.ctr("task", "ls")
        for line in r.stdout.splitlines()[1:]:
            parts = line.split()
            if parts and parts[0] == cid:
                return parts[2]
        return None

    # --- what must be gone after each test -----------------------------------------
    def shims(self):
        return hostenv.processes_mentioning("-address " + self.address)

    def leftovers(self, namespace=NAMESPACE, runtime_dirs=True):
        out = []
        ids = self.ctr("containers", "ls", "-q", namespace=namespace).stdout.split()
        out += [f"ctr container {i}" for i in ids]
        tasks = self.ctr("tasks", "ls", "-q", namespace=namespace).stdout.split()
        out += [f"ctr task {i}" for i in tasks]
        if runtime_dirs:
            for rt in self.runtimes:
                root = os.path.join(self.runc_root(rt), namespace)
                out += [f"{rt} state {root}/{e}" for e in runtime_entries(root)]
        if namespace == NAMESPACE:
            out += [f"shim {pid}: {line}" for pid, line in self.shims()]
            out += [f"mount {m}" for m in hostenv.mounts_under(self.dir)
                    if m not in self.base_mounts]
            out += [f"cgroup {d}" for d in hostenv.cgroup_leaves(NAMESPACE)
                    if d not in self.base_cgroups]
        return out

    def reset(self, namespace=NAMESPACE):
        """Remove every task and container in the namespace (after a failure)."""
        for cid in self.ctr("tasks", "ls", "-q", namespace=namespace).stdout.split():
            self.ctr("tasks", "delete", "-f", cid, namespace=namespace)   # -f: SIGKILL first
        for cid in self.ctr("containers", "ls", "-q", namespace=namespace).stdout.split():
            self.ctr("containers", "delete", cid, namespace=namespace)

    def close(self):
        problems = []
        try:
            self.reset()
            self.ctr("images", "rm", IMAGE)
        finally:
            self.daemon.stop()
            left = self.shims()
            if left:
                problems.append(f"shims outlived containerd: {left}")
                hostenv.kill_all(left)
            problems += [f"mount left: {m}" for m in hostenv.unmount_under(self.dir)]
            problems += [f"cgroup left: {d}" for d in hostenv.remove_cgroup_tree(NAMESPACE)]
            problems += [f"host path left: {p}" for p in self.host_paths.restore()]
        return problems

