"""update: change a running container's resource limits.

--resources FILE|- (LinuxResources JSON; then every other flag is ignored,
as with runc) or the individual flags.  Zero or absent means unchanged.
"""
import re

from pyrunc.cgroups.manager import Manager
from pyrunc.errors import StateError, UsageError
from pyrunc.state import Container

# runc's flags: (flag, section, key, parser)
_RAM = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_MULT = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(flag, text):
    """"512m", "1g", "1024" -> bytes (binary units, as Docker's RAMInBytes); "-1" -> -1."""
    if text.strip() == "-1":
        return -1
    m = _RAM.match(text.strip())
    if not m:
        raise UsageError(f"invalid value for {flag}: invalid size: '{text}'")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _MULT[unit])


def _uint(flag, text):
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise UsageError(f"invalid value for {flag}: {text!r} is not an unsigned integer")
    return v


def _int(flag, text):
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"invalid value for {flag}: {text!r} is not an integer") from None


FLAGS = (
    ("cpu-period", "cpu", "period", _uint),
    ("cpu-quota", "cpu", "quota", _int),
    ("cpu-share", "cpu", "shares", _uint),
    ("cpu-rt-period", "cpu", "realtimePeriod", _uint),
    ("cpu-rt-runtime", "cpu", "realtimeRuntime", _int),
    ("cpuset-cpus", "cpu", "cpus", lambda f, v: v),
    ("cpuset-mems", "cpu", "mems", lambda f, v: v),
    ("memory", "memory", "limit", ram_in_bytes),
    ("memory-reservation", "memory", "reservation", ram_in_bytes),
    ("memory-swap", "memory", "swap", ram_in_bytes),
)


def resources_from_flags(flags):
    res = {}
    for flag, section, key, parse in FLAGS:
        text = flags.get(flag.replace("-", "_"))
        if text not in (None, ""):
            res.setdefault(section, {})[key] = parse("--" + flag, str(text))
    if flags.get("pids_limit"):
        res["pids"] = {"limit": int(flags["pids_limit"])}
    if flags.get("blkio_weight"):
        res["blockIO"] = {"weight": int(flags["blkio_weight"])}
    for flag in ("l3_cache_schema", "mem_bw_schema"):
        if flags.get(flag):
            raise UsageError(f"--{flag.replace('_', '-')}: Intel RDT is not supported by pyrunc")
    return res


def main(g, a):
    c = Container(g["root"], a.args[0]).lock()
    try:
        if c.status() == "stopped":
            raise StateError("container not running")
        if a.flags.get("resources"):
            from pyrunc.spec.loader import load_resources
            res = load_resources(a.flags["resources"])
        else:
            res = resources_from_flags(a.flags)
        Manager.for_state(c.state).update(res)
    finally:
        c.unlock()
    return 0
