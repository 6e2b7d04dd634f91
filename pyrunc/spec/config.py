"""Typed view of an OCI runtime config (runtime-spec 1.2).

`Config.from_dict` expects a dict that has already passed schema validation
(pyrunc.spec.validate); it fills defaults and converts names to snake_case so
that nothing past this point handles raw JSON.  Sections that later work types
more fully (resources, seccomp, ...) are kept as the raw dict for now.
"""


from pyrunc import pathstr
from pyrunc.record import Record, field


class IdMapping(Record):
    container_id: int
    host_id: int
    size: int

    @classmethod
    def from_dict(cls, d):
        return cls(d["containerID"], d["hostID"], d["size"])


class User(Record):
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple = ()

    @classmethod
    def from_dict(cls, d):
        return cls(d.get("uid", 0), d.get("gid", 0), d.get("umask"),
                   tuple(d.get("additionalGids") or ()))


class Rlimit(Record):
    type: str   # "RLIMIT_NOFILE"
    soft: int
    hard: int


class Capabilities(Record):
    """Each set is a tuple of names like "CAP_CHOWN"; None where the config omits the set."""
    bounding: tuple | None = None
    effective: tuple | None = None
    inheritable: tuple | None = None
    permitted: tuple | None = None
    ambient: tuple | None = None

    @classmethod
    def from_dict(cls, d):
        def s(k):
            v = d.get(k)
            return None if v is None else tuple(v)
        return cls(s("bounding"), s("effective"), s("inheritable"), s("permitted"), s("ambient"))


class Process(Record):
    args: tuple
    cwd: str = "/"
    env: tuple = ()
    terminal: bool = False
    console_size: tuple | None = None      # (height, width)
    user: User = User()
    capabilities: Capabilities | None = None
    rlimits: tuple = ()
    no_new_privileges: bool = False
    apparmor_profile: str = ""
    selinux_label: str = ""
    oom_score_adj: int | None = None
    scheduler: dict | None = None
    io_priority: dict | None = None
    exec_cpu_affinity: dict | None = None

    @classmethod
    def from_dict(cls, d):
        cs = d.get("consoleSize")
        caps = d.get("capabilities")
        return cls(
            args=tuple(d.get("args") or ()),
            cwd=d.get("cwd", "/"),
            env=tuple(d.get("env") or ()),
            terminal=bool(d.get("terminal", False)),
            console_size=(cs["height"], cs["width"]) if cs else None,
            user=User.from_dict(d.get("user") or {}),
            capabilities=None if caps is None else Capabilities.from_dict(caps),
            rlimits=tuple(Rlimit(r["type"], r["soft"], r["hard"]) for r in d.get("rlimits") or ()),
            no_new_privileges=bool(d.get("noNewPrivileges", False)),
            apparmor_profile=d.get("apparmorProfile", ""),
            selinux_label=d.get("selinuxLabel", ""),
            oom_score_adj=d.get("oomScoreAdj"),
            scheduler=d.get("scheduler"),
            io_priority=d.get("ioPriority"),
            exec_cpu_affinity=d.get("execCPUAffinity"),
        )


class Root(Record):
    path: str          # absolute: a relative root.path is resolved against the bundle
    readonly: bool = False


class Mount(Record):
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple = ()
    uid_mappings: tuple = ()
    gid_mappings: tuple = ()

    @classmethod
    def from_dict(cls, d):
        return cls(d["destination"], d.get("type"), d.get("source"),
                   tuple(d.get("options") or ()),
                   tuple(IdMapping.from_dict(m) for m in d.get("uidMappings") or ()),
                   tuple(IdMapping.from_dict(m) for m in d.get("gidMappings") or ()))


class Hook(Record):
    path: str
    args: tuple = ()
    env: tuple = ()
    timeout: int | None = None

    @classmethod
    def from_dict(cls, d):
        return cls(d["path"], tuple(d.get("args") or ()), tuple(d.get("env") or ()),
                   d.get("timeout"))


HOOK_STAGES = ("prestart", "createRuntime", "createContainer", "startContainer",
               "poststart", "poststop")


class Hooks(Record):
    """stage name (as in config.json) -> tuple of Hook."""
    stages: dict = field(default_factory=dict)

    def __getitem__(self, stage):
        return self.stages.get(stage, ())

    @classmethod
    def from_dict(cls, d):
        return cls({k: tuple(Hook.from_dict(h) for h in d.get(k) or ()) for k in HOOK_STAGES
                    if d.get(k)})


class Namespace(Record):
    type: str                 # "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"
    path: str | None = None   # join this namespace instead of creating one


class Device(Record):
    path: str
    type: str                 # "c", "b", "u", "p"
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None

    @classmethod
    def from_dict(cls, d):
        return cls(d["path"], d["type"], d.get("major", 0), d.get("minor", 0),
                   d.get("fileMode"), d.get("uid"), d.get("gid"))


class Linux(Record):
    namespaces: tuple = ()
    uid_mappings: tuple = ()
    gid_mappings: tuple = ()
    time_offsets: dict = field(default_factory=dict)   # "monotonic"/"boottime" -> (secs, nanosecs)
    devices: tuple = ()
    cgroups_path: str | None = None
    resources: dict | None = None
    rootfs_propagation: str = ""
    masked_paths: tuple = ()
    readonly_paths: tuple = ()
    sysctl: dict = field(default_factory=dict)
    seccomp: dict | None = None
    mount_label: str = ""
    personality: dict | None = None
    intel_rdt: dict | None = None
    net_devices: dict | None = None
    memory_policy: dict | None = None

    def namespace(self, ns_type):
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None

    @classmethod
    def from_dict(cls, d):
        return cls(
            namespaces=tuple(Namespace(n["type"], n.get("path") or None)
                             for n in d.get("namespaces") or ()),
            uid_mappings=tuple(IdMapping.from_dict(m) for m in d.get("uidMappings") or ()),
            gid_mappings=tuple(IdMapping.from_dict(m) for m in d.get("gidMappings") or ()),
            time_offsets={k: (v.get("secs", 0), v.get("nanosecs", 0))
                          for k, v in (d.get("timeOffsets") or {}).items()},
            devices=tuple(Device.from_dict(x) for x in d.get("devices") or ()),
            cgroups_path=d.get("cgroupsPath"),
            resources=d.get("resources"),
            rootfs_propagation=d.get("rootfsPropagation", ""),
            masked_paths=tuple(d.get("maskedPaths") or ()),
            readonly_paths=tuple(d.get("readonlyPaths") or ()),
            sysctl=dict(d.get("sysctl") or {}),
            seccomp=d.get("seccomp"),
            mount_label=d.get("mountLabel", ""),
            personality=d.get("personality"),
            intel_rdt=d.get("intelRdt"),
            net_devices=d.get("netDevices"),
            memory_policy=d.get("memoryPolicy"),
        )


class Config(Record):
    oci_version: str
    bundle: str               # absolute path of the bundle directory
    root: Root
    process: Process | None = None
    mounts: tuple = ()
    hostname: str | None = None
    domainname: str | None = None
    hooks: Hooks = Hooks()
    annotations: dict = field(default_factory=dict)
    linux: Linux = Linux()
    # the document this was made from: saved in state.json so that `exec`
    # needs neither the bundle nor a second validation
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, d, bundle):
        bundle = pathstr.abspath(bundle)
        root = d.get("root") or {}
        root_path = root.get("path", "rootfs")
        proc = d.get("process")
        return cls(
            oci_version=d.get("ociVersion", ""),
            bundle=bundle,
            root=Root(pathstr.normpath(pathstr.join(bundle, root_path)),
                      bool(root.get("readonly", False))),
            process=None if proc is None else Process.from_dict(proc),
            mounts=tuple(Mount.from_dict(m) for m in d.get("mounts") or ()),
            hostname=d.get("hostname"),
            domainname=d.get("domainname"),
            hooks=Hooks.from_dict(d.get("hooks") or {}),
            annotations=dict(d.get("annotations") or {}),
            linux=Linux.from_dict(d.get("linux") or {}),
            raw=d,
        )
