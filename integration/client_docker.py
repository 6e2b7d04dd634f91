"""dockerd 20.10, private to the session, on the session's containerd.

Started with its own data-root, exec-root, pidfile and unix socket, no
networking of its own (no iptables, bridge, masquerade, ip_forward or
userland proxy), cgroupfs under a cgroup parent of our own, and pyrunc added
as a runtime (`--add-runtime pyrunc=...`); "runc" is docker's default runtime.
Always /usr/bin/docker: the `docker` first on PATH may be another CLI.
"""
import json
import os

from integration import hostenv
from integration.client_containerd import Containerd
from integration.daemon import Daemon, run, runtime_entries
from integration.images import ENV_PATH, rootfs_tar

DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
NAMESPACE = "pyrunc-it-docker"         # dockerd's containerd namespace
CGROUP_PARENT = "pyrunc-it-docker"
IMAGE = "busybox:pyrunc-it"

# dockerd writes its libtrust key to /etc/docker/key.json (no flag moves it)
# and makes /run/docker/plugins (hard-coded plugin exec root).
HOST_PATHS = ["/etc/docker/key.json", "/run/docker", "/run/docker/plugins"]


class Dockerd:
    def __init__(self, session_dir, containerd: Containerd, pyrunc):
        self.containerd = containerd
        self.dir = os.path.join(session_dir, "docker")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "docker.sock")
        self.exec_root = os.path.join(self.dir, "exec")
        self.data_root = os.path.join(self.dir, "data")
        self.env = dict(os.environ, DOCKER_CONFIG=os.path.join(self.dir, "cli"))
        self.env.pop("DOCKER_HOST", None)
        self.host_paths = hostenv.HostPaths(HOST_PATHS)
        config = os.path.join(self.dir, "daemon.json")
        with open(config, "w") as f:
            json.dump({}, f)     # not /etc/docker/daemon.json
        argv = [DOCKERD, "--config-file", config,
                "--containerd", containerd.address,
                "--containerd-namespace", NAMESPACE,
                "--containerd-plugins-namespace", NAMESPACE + "-plugins",
                "--data-root", self.data_root, "--exec-root", self.exec_root,
                "--pidfile", os.path.join(self.dir, "dockerd.pid"),
                "-H", "unix://" + self.sock,
                "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                "--ip-masq=false", "--bridge=none", "--userland-proxy=false",
                "--storage-driver", "overlay2",
                "--exec-opt", "native.cgroupdriver=cgroupfs",
                "--cgroup-parent", "/" + CGROUP_PARENT,
                "--add-runtime", "pyrunc=" + pyrunc]
        self.daemon = Daemon("dockerd", argv, os.path.join(self.dir, "dockerd.log"))
        self.base_cgroups = set(hostenv.cgroup_leaves(CGROUP_PARENT))
        try:
            self.daemon.wait_ready(lambda: os.path.exists(self.sock) and
                                   self.docker("version", timeout=5).returncode == 0)
        except BaseException:
            self.daemon.stop()
            raise

    def argv(self, *args):
        return [DOCKER, "-H", "unix://" + self.sock, *args]

    def docker(self, *args, timeout=60, check=False, input=None):
        return run(self.argv(*args), timeout=timeout, check=check, env=self.env, input=input)

    def import_image(self, rootfs, session_dir):
        tar = rootfs_tar(rootfs, os.path.join(session_dir, "busybox-rootfs.tar"))
        self.docker("import", "--change", "ENV " + ENV_PATH, "--change", 'CMD ["sh"]',
                    tar, IMAGE, check=True)
        # the daemon's own mounts (dockerd's data-root bind, podman's overlay
        # home): only mounts beyond these are a container's
        self.base_mounts = set(hostenv.mounts_under(self.dir))

    def runtime_root(self):
        # docker 20.10 passes every runtime it runs through the runc shim the
        # same --root, <exec-root>/runtime-runc (named after the shim)
        return os.path.join(self.exec_root, "runtime-runc", NAMESPACE)

    def inspect(self, name):
        r = self.docker("inspect", name)
        return json.loads(r.stdout)[0] if r.returncode == 0 else None

    def bundle(self, cid):
        return self.containerd.bundle(cid, namespace=NAMESPACE)

    def leftovers(self):
        out = [f"docker container {i}" for i in self.docker("ps", "-aq").stdout.split()]
        out += self.containerd.leftovers(namespace=NAMESPACE, runtime_dirs=False)
        root = self.runtime_root()
        out += [f"runtime state {root}/{e}" for e in runtime_entries(root)]
        out += [f"shim {pid}: {line}" for pid, line in self.containerd.shims()]
        out += [f"cgroup {d}" for d in hostenv.cgroup_leaves(CGROUP_PARENT)
                if d not in self.base_cgroups]
        out += [f"mount {m}" for m in hostenv.mounts_under(self.dir) if m not in self.base_mounts]
        return out

    def reset(self):
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", *ids)

    def close(self):
        problems = []
        try:
            self.reset()
            self.docker("rmi", "-f", IMAGE)
        finally:
            self.daemon.stop()
            problems += [f"mount left: {m}" for m in hostenv.unmount_under(self.dir)]
            problems += [f"cgroup left: {d}" for d in hostenv.remove_cgroup_tree(CGROUP_PARENT)]
            self.containerd.reset(namespace=NAMESPACE)
            problems += [f"host path left: {p}" for p in self.host_paths.restore()]
        return problems
