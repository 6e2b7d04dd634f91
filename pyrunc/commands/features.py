"""`pyrunc features`: what this build and this host support (runtime-spec features.md).

Every entry is asked of the code or the host, not written down by hand, so
that it stays true: namespaces from /proc/self/ns, capabilities up to the
kernel's last cap, mount options from the parser's own tables, seccomp from
the planner's tables and the kernel's answer for each flag.
"""
import json
import os
import sys

from pyrunc.cli import SPEC_VERSION, VERSION

NS_FILES = {"cgroup": "cgroup", "ipc": "ipc", "mount": "mnt", "network": "net", "pid": "pid",
            "time": "time", "user": "user", "uts": "uts"}


def main(g, a):
    sys.stdout.write(json.dumps(describe(), indent=4) + "\n")
    return 0


def describe():
    from pyrunc import caps
    from pyrunc.plan import extras, mountopts
    from pyrunc.plan import seccomp as sc
    from pyrunc.spec.config import HOOK_STAGES
    options = sorted(set(mountopts.FLAGS) | set(mountopts.PROPAGATION) |
                     set(mountopts.RECURSIVE) | {"tmpcopyup"})
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(HOOK_STAGES),
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(t for t, f in NS_FILES.items()
                                 if os.path.exists(f"/proc/self/ns/{f}")),
            "capabilities": [caps.name_of(n) for n in range(caps.last_cap() + 1)
                             if caps.name_of(n)],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": True},
            "seccomp": _seccomp(sc),
            # No LSM and no resctrl support: configs asking for them are refused
            # (plan/extras.py), never run with the setting silently dropped.
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False, "schemata": False, "monitoring": False},
            "memoryPolicy": {"modes": list(extras.MPOL_MODES), "flags": list(extras.MPOL_FLAGS)},
            "netDevices": {"enabled": True},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {
            "org.pyrunc.version": VERSION,
            "org.pyrunc.python": sys.version.split()[0],
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }


def _seccomp(sc):
    try:
        import pyrunc.syscalls as sys_
        sys_.seccomp_native_arch()   # libseccomp is linked and answers
    except (ImportError, AttributeError, OSError):
        return {"enabled": False}
    supported = []
    for name in sc.FLAGS:
        bit = getattr(sys_.C, name, 0)
        probe = bit | sys_.C.SECCOMP_FILTER_FLAG_NEW_LISTENER if "WAIT_KILLABLE" in name else bit
        if bit and sys_.seccomp_flags_supported(probe):
            supported.append(name)
    out = {"enabled": True, "actions": sorted(sc.ACTIONS), "operators": sorted(sc.OPERATORS),
           "archs": sorted(sc.ARCHITECTURES), "knownFlags": list(sc.FLAGS),
           "supportedFlags": supported}
    return out
