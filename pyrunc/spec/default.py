"""The starter config.json that `pyrunc spec [--rootless]` writes.

Same content, member order included, as `runc spec` of runc 1.1.5, with one
intentional difference: ociVersion is "1.2.0" (runc 1.1.5 writes "1.0.2-dev"),
the spec version pyrunc implements.  Everything else, down to the hostname
"runc", is kept so scripts that edit runc's template work unchanged.

Rootless differs from the default the way runc's does: a user namespace mapping
only the caller's effective uid/gid to 0, no network namespace (an unprivileged
user could not configure one), /sys bind-mounted instead of a fresh sysfs, no
gid=5 on devpts (gid 5 is not mapped), and no device cgroup rules.
"""
import os

OCI_VERSION = "1.2.0"

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

_MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
           "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
           "/proc/scsi"]

_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def _mounts(rootless):
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        devpts.append("gid=5")
    if rootless:
        sys_mount = {"destination": "/sys", "type": "none", "source": "/sys",
                     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    else:
        sys_mount = {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                     "options": ["nosuid", "noexec", "nodev", "ro"]}
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        sys_mount,
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]


def _linux(rootless):
    masked = {"maskedPaths": list(_MASKED), "readonlyPaths": list(_READONLY)}
    if not rootless:
        return {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            **masked,
        }
    return {
        "uidMappings": [{"containerID": 0, "hostID": os.geteuid(), "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": os.getegid(), "size": 1}],
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")],
        **masked,
    }


def default_spec(rootless=False):
    """A fresh dict (safe to modify) holding the starter config."""
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {s: list(_CAPS) for s in ("bounding", "effective", "permitted",
                                                       "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": _mounts(rootless),
        "linux": _linux(rootless),
    }
