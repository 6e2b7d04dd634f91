"""ps: the container's processes — host pids as JSON, or the lines of
`ps ARGS` (default -ef) whose PID is one of them."""
import json
import subprocess
import sys

from pyrunc.cgroups.manager import Manager
from pyrunc.errors import RuntimeFailure, UsageError
from pyrunc.state import Container


def main(g, a):
    fmt = a.flags.get("format", "table")
    c = Container(g["root"], a.args[0])
    pids = Manager.for_state(c.state).pids()
    if fmt == "json":
        # Go encodes an empty (nil) slice as null, and clients accept that
        sys.stdout.write(json.dumps(pids or None, separators=(",", ":")) + "\n")
        return 0
    if fmt != "table":
        raise UsageError("invalid format option")
    args = list(a.args[1:])
    if args and args[0] == "--":
        args = args[1:]
    r = subprocess.run(["ps"] + (args or ["-ef"]), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeFailure(f"exit status {r.returncode}: {r.stdout.strip()}")
    sys.stdout.write(filter_ps(r.stdout, pids))
    return 0


def filter_ps(output, pids):
    """The header and the lines whose PID column is in pids."""
    lines = output.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise RuntimeFailure("couldn't find PID field in ps output")
    col = header.index("PID")
    wanted = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        try:
            pid = int(fields[col])
        except (IndexError, ValueError):
            raise RuntimeFailure(f"unable to parse pid: {line!r}") from None
        if pid in wanted:
            out.append(line)
    return "\n".join(out) + "\n"
