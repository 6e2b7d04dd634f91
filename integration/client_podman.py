"""podman 4.3 + conmon, private to the session.

podman has no daemon: every command reads a private containers.conf and
storage.conf (CONTAINERS_CONF / CONTAINERS_STORAGE_CONF) that put graphroot,
runroot, tmp dir, CNI config and the events log under the session dir, use
cgroupfs (no systemd) and the file events backend.

Runtimes are named in [engine.runtimes] (runc and pyrunc) and listed in
runtime_supports_json, so conmon passes `--log FILE --log-format=json` to
either, as it does for runc.  podman decides that from the runtime's name
(the basename of a `--runtime /path`): with podman's default list (crun,
runc, kata, runsc, krun) pyrunc gets no --log and its errors reach podman
through stderr only; test_runtime_without_json_log covers that path.

podman passes no `--root` to the runtime, so each uses its default root
(/run/runc, /run/pyrunc): `--runtime-flag root=...` would not reach the
`podman container cleanup` that conmon runs at exit, which then misses the
container.  Container ids are 64 hex digits, so nothing collides there.

podman asks for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576 unless told
otherwise; this sandbox has no CAP_SYS_RESOURCE, so no runtime can raise the
hard limits: default_ulimits caps them at what podman's own process has.
"""
import json
import os
import resource

from integration import hostenv
from integration.daemon import run
from integration.images import ENV_PATH, rootfs_tar

PODMAN = "/usr/bin/podman"
IMAGE = "localhost/busybox:pyrunc-it"
CGROUP_PARENT = "pyrunc-it-podman"
RUNTIME_ROOTS = {"runc": "/run/runc", "pyrunc": "/run/pyrunc"}
# podman lowers its own RLIMIT_NPROC to this before it starts conmon
PODMAN_NPROC = 32768

# containers/image's blob-info cache for root is not under graphroot
HOST_PATHS = ["/var/lib/containers", "/var/lib/containers/cache",
              "/var/lib/containers/cache/blob-info-cache-v1.boltdb"]

_CONF = """\
[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
log_driver = "k8s-file"

[network]
network_config_dir = "{dir}/cni"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{dir}/events.log"
tmp_dir = "{dir}/tmp"
static_dir = "{dir}/root/libpod"
volume_path = "{dir}/root/volumes"
runtime = "runc"
runtime_supports_json = ["runc", "pyrunc"]

[engine.runtimes]
runc = ["{runc}"]
pyrunc = ["{pyrunc}"]
"""

_STORAGE = """\
[storage]
driver = "overlay"
graphroot = "{dir}/root"
runroot = "{dir}/run"
"""


class Podman:
    def __init__(self, session_dir, runtimes):
        self.dir = os.path.join(session_dir, "podman")
        self.runtimes = runtimes
        for sub in ("cni", "tmp", "root", "run"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.host_paths = hostenv.HostPaths(HOST_PATHS)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], PODMAN_NPROC)
        conf = os.path.join(self.dir, "containers.conf")
        with open(conf, "w") as f:
            f.write(_CONF.format(dir=self.dir, nofile=nofile, nproc=nproc,
                                 runc=runtimes["runc"], pyrunc=runtimes["pyrunc"]))
        storage = os.path.join(self.dir, "storage.conf")
        with open(storage, "w") as f:
            f.write(_STORAGE.format(dir=self.dir))
        self.env = dict(os.environ, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage)
        self.env.pop("CONTAINER_HOST", None)
        self.base_cgroups = set(hostenv.cgroup_leaves(CGROUP_PARENT))
        self.ids = set()      # every container a test made, for the runtime-root check
        # on OOM conmon writes an "oom" file into its working directory,
        # which is podman's: keep it out of the caller's cwd
        self.cwd = os.path.join(self.dir, "cwd")
        os.makedirs(self.cwd, exist_ok=True)

    def argv(self, *args, runtime="runc"):
        return [PODMAN, "--runtime", runtime, *args]

    def podman(self, *args, runtime="runc", timeout=60, check=False, input=None):
        return run(self.argv(*args, runtime=runtime), timeout=timeout, check=check,
                   env=self.env, input=input, cwd=self.cwd)

    def run_flags(self):
        return ["--network", "none", "--cgroup-parent", "/" + CGROUP_PARENT]

    def import_image(self, rootfs, session_dir):
        tar = rootfs_tar(rootfs, os.path.join(session_dir, "busybox-rootfs.tar"))
        self.podman("import", "--change", "ENV " + ENV_PATH, "--change", 'CMD ["sh"]',
                    tar, IMAGE, check=True)
        # the daemon's own mounts (dockerd's data-root bind, podman's overlay
        # home): only mounts beyond these are a container's
        self.base_mounts = set(hostenv.mounts_under(self.dir))

    def inspect(self, name):
        r = self.podman("inspect", name)
        return json.loads(r.stdout)[0] if r.returncode == 0 else None

    def full_id(self, name):
        r = self.podman("inspect", "--format", "{{.Id}}", name)
        return r.stdout.strip() if r.returncode == 0 else None

    def conmons(self):
        return hostenv.processes_mentioning(self.dir + "/")

    def leftovers(self):
        out = [f"podman container {i}" for i in self.podman("ps", "-aq").stdout.split()]
        out += [f"process {pid}: {line[:200]}" for pid, line in self.conmons()]
        for rt, root in RUNTIME_ROOTS.items():
            for cid in self.ids:
                if os.path.exists(os.path.join(root, cid)):
                    out.append(f"{rt} state {root}/{cid}")
        out += [f"cgroup {d}" for d in hostenv.cgroup_leaves(CGROUP_PARENT, ignore=("conmon",))
                if d not in self.base_cgroups]
        out += [f"mount {m}" for m in hostenv.mounts_under(self.dir) if m not in self.base_mounts]
        return out

    def reset(self):
        for rt in self.runtimes:
            self.podman("rm", "-af", "-t", "0", runtime=rt)

    def close(self):
        problems = []
        try:
            self.reset()
            self.podman("rmi", "-af")
        finally:
            left = self.conmons()
            if left:
                problems.append(f"processes outlived podman: {left}")
                hostenv.kill_all(left)
            problems += [f"mount left: {m}" for m in hostenv.unmount_under(self.dir)]
            problems += [f"cgroup left: {d}" for d in hostenv.remove_cgroup_tree(CGROUP_PARENT)]
            problems += [f"host path left: {p}" for p in self.host_paths.restore()]
        return problems
