import posix   # not os: see pyrunc/state.py
import sys

from pyrunc import fastjson
from pyrunc.errors import ContainerNotFound, UsageError
from pyrunc.state import Container, join, list_ids


def _owner(path):
    import pwd
    uid = posix.stat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def main(g, a):
    fmt = a.flags.get("format", "table")
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format option: {fmt}")
    states = []
    for cid in list_ids(g["root"]):
        try:
            st = Container(g["root"], cid).oci_state()
            # runc's list (unlike its state) names the owner of the state dir
            st["owner"] = _owner(join(g["root"], cid))
            states.append(st)
        except (ContainerNotFound, FileNotFoundError):
            continue   # deleted while we listed
    if a.flags.get("quiet"):
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
    elif fmt == "json":
        sys.stdout.write(fastjson.dumps(states) + "\n")
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"])
                 for s in states]
        # Go's tabwriter as runc configures it: min width 12, padding 3
        widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(5)]
        for r in rows:
            sys.stdout.write("".join(c.ljust(w) for c, w in zip(r, widths)) + r[5] + "\n")
    return 0
