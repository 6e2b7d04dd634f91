"""resume: thaw a paused container."""
from pyrunc.cgroups.manager import Manager
from pyrunc.errors import StateError
from pyrunc.state import Container


def main(g, a):
    c = Container(g["root"], a.args[0]).lock()
    try:
        m = Manager.for_state(c.state)
        if c.status() == "stopped" or not m.is_frozen():
            raise StateError("container not paused")
        m.thaw()
    finally:
        c.unlock()
    return 0
