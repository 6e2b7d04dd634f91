"""pause: freeze every process of the container (the freezer cgroup)."""
from pyrunc.cgroups.manager import Manager
from pyrunc.errors import StateError
from pyrunc.state import Container


def main(g, a):
    c = Container(g["root"], a.args[0]).lock()
    try:
        m = Manager.for_state(c.state)
        # runc pauses a running or a created container, and nothing else
        if c.status() not in ("running", "created") or m.is_frozen():
            raise StateError("container not running")
        m.freeze()
    finally:
        c.unlock()
    return 0
