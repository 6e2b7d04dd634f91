"""`pyrunc trace FILE [--format table|json] [--id ID] [--command CMD]`: read a --trace file.

table: one row per invocation (time, pid, command, id, exit, total and phase
ms, stdio, extra fds, faults, error); json: the records as one JSON array.
A line that does not parse is reported on stderr with its number and makes
the exit code 1 (the rest is still shown).
"""
import json
import sys

from pyrunc.errors import PyruncError, UsageError

PHASES = ("parse", "cgroups", "namespaces", "mounts", "hooks", "container", "exec")
_SHORT = {"parse": "parse", "cgroups": "cg", "namespaces": "ns", "mounts": "mnt",
          "hooks": "hooks", "container": "ctr", "exec": "exec"}
_STDIO = {"/dev/null": "null", "pipe": "pipe", "socket": "sock", "closed": "-"}


def read_records(path):
    """(records, problems): problems are (line number, text) of lines that do not parse."""
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        from pyrunc.errors import oserror_text
        raise PyruncError(f"open {path}: {oserror_text(e)}") from None
    records, problems = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            problems.append((n, f"not JSON ({e})"))
            continue
        if not isinstance(rec, dict) or "argv" not in rec or "end" not in rec:
            problems.append((n, "not a trace record"))
            continue
        records.append(rec)
    return records, problems


def _stdio(rec):
    io = rec.get("stdio") or {}
    out = []
    for name in ("stdin", "stdout", "stderr"):
        v = io.get(name, "?")
        out.append(_STDIO.get(v) or v.split(":", 1)[0])
    return "/".join(out)


def _phases(rec):
    ph = rec.get("phases_ms") or {}
    return " ".join(f"{_SHORT[p]}={ph[p]:g}" for p in PHASES if p in ph)


def _exit(rec):
    if rec.get("end") != "exit":
        return rec.get("end", "?") + (f"({rec['signal']})" if rec.get("signal") else "")
    return str(rec.get("exit"))


def rows(records):
    head = ("TIME", "PID", "COMMAND", "ID", "EXIT", "MS", "PHASES", "STDIO", "FDS", "FAULTS",
            "ERROR")
    out = [head]
    for r in records:
        t = str(r.get("time", ""))
        out.append((t[11:23] if len(t) > 23 else t, str(r.get("pid", "")),
                    str(r.get("command") or "-"), str(r.get("id") or "-"), _exit(r),
                    f"{r.get('total_ms', 0):g}", _phases(r) or "-", _stdio(r),
                    ",".join(f"{k}:{v.split(':', 1)[0]}" for k, v in
                             (r.get("extra_fds") or {}).items()) or "-",
                    ",".join(f.get("action", "?") + "@" + str(f.get("at", "?"))
                             for f in r.get("faults") or []) or "-",
                    r.get("error") or ""))
    return out


def table(records):
    out = rows(records)
    widths = [max(len(row[i]) for row in out) for i in range(len(out[0]) - 1)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] + "\n"
                   for row in out)


def main(g, a):
    fmt = a.flags.get("format", "table")
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format option: {fmt}")
    records, problems = read_records(a.args[0])
    if a.flags.get("id"):
        records = [r for r in records if r.get("id") == a.flags["id"]]
    if a.flags.get("command"):
        records = [r for r in records if r.get("command") == a.flags["command"]]
    if fmt == "json":
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
    else:
        sys.stdout.write(table(records))
    for n, why in problems:
        sys.stderr.write(f"pyrunc: {a.args[0]}:{n}: {why}\n")
    return 1 if problems else 0
