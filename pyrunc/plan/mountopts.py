"""An OCI mount's `options` list -> what the kernel calls need.

One option list feeds up to four different kernel interfaces: flags for
mount(2), propagation changes (each its own mount(2) call), a data string the
filesystem parses, and recursive attributes for mount_setattr(2).  This module
sorts the options into those buckets, the way runc 1.1/1.2 reads them, so that
the same config means the same mounts under both runtimes.

The MS_* / MOUNT_ATTR_* numbers are the Linux ABI, spelled out here so that
planning never loads the libc binding (tests check them against it).
"""
from pyrunc.errors import ConfigError
from pyrunc.record import Record

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_POSIXACL = 0x10000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_I_VERSION = 0x800000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# name -> (flag, clears): "ro" sets MS_RDONLY, "rw" clears it.  A later option
# overrides an earlier one, as with mount(8).
FLAGS = {
    "ro": (MS_RDONLY, False), "rw": (MS_RDONLY, True),
    "nosuid": (MS_NOSUID, False), "suid": (MS_NOSUID, True),
    "nodev": (MS_NODEV, False), "dev": (MS_NODEV, True),
    "noexec": (MS_NOEXEC, False), "exec": (MS_NOEXEC, True),
    "sync": (MS_SYNCHRONOUS, False), "async": (MS_SYNCHRONOUS, True),
    "dirsync": (MS_DIRSYNC, False),
    "remount": (MS_REMOUNT, False),
    "mand": (MS_MANDLOCK, False), "nomand": (MS_MANDLOCK, True),
    "noatime": (MS_NOATIME, False), "atime": (MS_NOATIME, True),
    "nodiratime": (MS_NODIRATIME, False), "diratime": (MS_NODIRATIME, True),
    "relatime": (MS_RELATIME, False), "norelatime": (MS_RELATIME, True),
    "strictatime": (MS_STRICTATIME, False), "nostrictatime": (MS_STRICTATIME, True),
    "lazytime": (MS_LAZYTIME, False), "nolazytime": (MS_LAZYTIME, True),
    "nosymfollow": (MS_NOSYMFOLLOW, False), "symfollow": (MS_NOSYMFOLLOW, True),
    "bind": (MS_BIND, False), "rbind": (MS_BIND | MS_REC, False),
    "acl": (MS_POSIXACL, False), "noacl": (MS_POSIXACL, True),
    "iversion": (MS_I_VERSION, False), "noiversion": (MS_I_VERSION, True),
    "silent": (MS_SILENT, False), "loud": (MS_SILENT, True),
    "defaults": (0, False),
}

PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}

# recursive variants, applied to the whole mount tree with mount_setattr(2)
RECURSIVE = {
    "rro": (MOUNT_ATTR_RDONLY, False), "rrw": (MOUNT_ATTR_RDONLY, True),
    "rnosuid": (MOUNT_ATTR_NOSUID, False), "rsuid": (MOUNT_ATTR_NOSUID, True),
    "rnodev": (MOUNT_ATTR_NODEV, False), "rdev": (MOUNT_ATTR_NODEV, True),
    "rnoexec": (MOUNT_ATTR_NOEXEC, False), "rexec": (MOUNT_ATTR_NOEXEC, True),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, False), "rdiratime": (MOUNT_ATTR_NODIRATIME, True),
    "rrelatime": (MOUNT_ATTR_RELATIME, False), "rnorelatime": (MOUNT_ATTR_RELATIME, True),
    "rnoatime": (MOUNT_ATTR_NOATIME, False), "ratime": (MOUNT_ATTR_NOATIME, True),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, False),
    "rnostrictatime": (MOUNT_ATTR_STRICTATIME, True),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, False), "rsymfollow": (MOUNT_ATTR_NOSYMFOLLOW, True),
}

_ATIME_ATTRS = (MOUNT_ATTR_RELATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_STRICTATIME)

# Flags a bind mount only gets through a second MS_REMOUNT|MS_BIND call: the
# kernel ignores per-mount flags on the first MS_BIND.
_NOT_REMOUNTABLE = MS_BIND | MS_REC | MS_REMOUNT


class MountOptions(Record):
    flags: int = 0          # for mount(2)
    cleared: int = 0        # flags the options explicitly turn off (rw, suid, dev, ...)
    propagation: tuple = ()  # MS_* propagation values, applied in this order after mounting
    data: str = ""          # everything the filesystem itself parses ("mode=755,size=64k")
    attr_set: int = 0       # MOUNT_ATTR_* for mount_setattr(AT_RECURSIVE)
    attr_clr: int = 0
    copyup: bool = False    # tmpcopyup

    @property
    def bind(self):
        return bool(self.flags & MS_BIND)

    @property
    def remount_flags(self):
        """For a bind mount: the flags that need a MS_REMOUNT|MS_BIND pass (0: none)."""
        return self.flags & ~_NOT_REMOUNTABLE


def parse_mount_options(options, where="mounts.options"):
    """Sort `options` into a MountOptions.  `where` names the option list in errors."""
    flags = cleared = attr_set = attr_clr = 0
    propagation, data = [], []
    copyup = False
    for opt in options:
        if opt in FLAGS:
            bit, clears = FLAGS[opt]
            if clears:
                flags, cleared = flags & ~bit, cleared | bit
            else:
                flags, cleared = flags | bit, cleared & ~bit
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in RECURSIVE:
            bit, clears = RECURSIVE[opt]
            if clears:
                attr_clr, attr_set = attr_clr | bit, attr_set & ~bit
            else:
                attr_set, attr_clr = attr_set | bit, attr_clr & ~bit
                if bit in _ATIME_ATTRS:
                    # mount_setattr(2): an atime mode only takes effect when the
                    # whole atime field is cleared in the same call.
                    attr_set &= ~(MOUNT_ATTR__ATIME & ~bit)
                    attr_clr |= MOUNT_ATTR__ATIME
        elif opt == "tmpcopyup":
            copyup = True
        elif opt in ("idmap", "ridmap"):
            raise ConfigError(where, f"{opt} mounts are not supported by pyrunc")
        elif opt:
            data.append(opt)
    return MountOptions(flags, cleared, tuple(propagation), ",".join(data),
                        attr_set, attr_clr, copyup)


def propagation_flag(name, where="linux.rootfsPropagation"):
    """rootfsPropagation value -> MS_* flags."""
    try:
        return PROPAGATION[name]
    except KeyError:
        raise ConfigError(where, f"invalid propagation value {name!r}") from None
