"""events: the container's stats every --interval and its OOM kills as they
happen, one JSON object a line; --stats prints the stats once."""
import json
import re
import select
import sys
import time

from pyrunc.cgroups.manager import Manager
from pyrunc.errors import PyruncError, StateError, UsageError
from pyrunc.state import Container

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}
_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text):
    """A Go duration ("5s", "1m30s", "250ms") in seconds."""
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise UsageError(f'invalid value "{text}" for flag -interval: parse error')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not s:
        raise UsageError(f'invalid value "{text}" for flag -interval: parse error')
    return sign * total


def _emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main(g, a):
    cid = a.args[0]
    interval = parse_duration(a.flags.get("interval") or "5s")
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")
    c = Container(g["root"], cid)
    if c.status() == "stopped":
        raise StateError(f"container with id {cid} is not running")
    m = Manager.for_state(c.state)
    if a.flags.get("stats"):
        _emit({"type": "stats", "id": cid, "data": m.stats()})
        return 0
    return _stream(c, m, cid, interval)


def _alive(c):
    try:
        c.load()
        return c.status() != "stopped"
    except PyruncError:
        return False    # deleted meanwhile


def _stream(c, m, cid, interval):
    watch = None
    try:
        watch = m.oom_events()
    except PyruncError:
        pass            # no memory controller: stats only
    poll = select.poll()
    if watch is not None:
        poll.register(watch.fileno(), watch.poll_mask)
    import gc
    gc.enable()   # the launcher turns it off; this may run for days
    try:
        next_stats = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_stats:
                if not _alive(c):
                    return 0
                try:
                    _emit({"type": "stats", "id": cid, "data": m.stats()})
                except OSError:
                    return 0   # stdout went away
                next_stats = now + interval
            if poll.poll(max(0.0, next_stats - time.monotonic()) * 1000) and watch is not None:
                n = watch.count()
                for _ in range(n):
                    _emit({"type": "oom", "id": cid})
                if watch.gone():
                    return 0
    finally:
        if watch is not None:
            watch.close()
