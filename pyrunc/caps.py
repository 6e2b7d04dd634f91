"""Linux capability names and numbers.

The table covers every capability up to CAP_CHECKPOINT_RESTORE (40, Linux 5.9).
A name the table does not know, or one the running kernel does not have
(number above /proc/sys/kernel/cap_last_cap), is not an error: runc 1.1 drops
such names with the warning "ignoring unknown or unavailable capabilities", and
configs written for newer kernels rely on that.  Names are matched exactly
("CAP_CHOWN"; "cap_chown" is unknown), as runc does.
"""

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",          # 0-3
    "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",                          # 4-7
    "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",                  # 8-10
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",           # 11-14
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",          # 15-18
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",            # 19-22
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG",      # 23-26
    "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",              # 27-30
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",              # 31-34
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",        # 35-38
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",                                           # 39-40
)

NUMBERS = {name: num for num, name in enumerate(NAMES)}

CAP_SETPCAP = NUMBERS["CAP_SETPCAP"]

_last_cap = None


def last_cap():
    """Highest capability number the running kernel knows (read once, lazily)."""
    global _last_cap
    if _last_cap is None:
        try:
            from pyrunc.state import read_bytes   # preloaded with the handlers
            _last_cap = int(read_bytes("/proc/sys/kernel/cap_last_cap").strip())
        except (OSError, ValueError):
            # no /proc (yet): trust the table rather than refuse every cap
            _last_cap = len(NAMES) - 1
    return _last_cap


def number_of(name):
    """Capability number for a name, or None when unknown or unavailable here."""
    num = NUMBERS.get(name)
    if num is None or num > last_cap():
        return None
    return num


def name_of(num):
    return NAMES[num] if 0 <= num < len(NAMES) else f"CAP_{num}"


def split_known(names):
    """(numbers, ignored): the usable cap numbers, and the names to warn about."""
    numbers, ignored = [], []
    for name in names or ():
        num = number_of(name)
        if num is None:
            ignored.append(name)
        else:
            numbers.append(num)
    return numbers, ignored


def mask_of(names):
    """Bitmask of the usable caps among names (unknown/unavailable ones left out)."""
    mask = 0
    for num in split_known(names)[0]:
        mask |= 1 << num
    return mask


def names_of(mask):
    """Inverse of mask_of, for messages and tests."""
    return tuple(name_of(n) for n in range(mask.bit_length()) if mask >> n & 1)


def unknown_warning(names):
    """runc's warning text for ignored cap names, or None when there are none."""
    if not names:
        return None
    return "ignoring unknown or unavailable capabilities: [" + " ".join(sorted(set(names))) + "]"
