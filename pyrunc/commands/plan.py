"""`pyrunc plan`: print the steps pyrunc would take for a bundle, doing nothing."""
import json
import os
import sys

from pyrunc.cli import rootless_flag


def main(g, a):
    from pyrunc.errors import UsageError
    from pyrunc.plan.build import build_plan
    from pyrunc.spec.loader import load_bundle
    fmt = a.flags.get("format", "text")
    if fmt not in ("text", "json"):
        raise UsageError(f"invalid format option: {fmt}")
    config = load_bundle(os.path.abspath(a.flags.get("bundle") or os.getcwd()))
    cid = a.args[0] if a.args else "<id>"
    plan = build_plan(config, cid=cid, no_pivot=a.flags.get("no_pivot", False),
                      no_new_keyring=a.flags.get("no_new_keyring", False),
                      preserve_fds=a.flags.get("preserve_fds", 0),
                      systemd_cgroup=g.get("systemd_cgroup", False), rootless=rootless_flag(g))
    if fmt == "json":
        sys.stdout.write(json.dumps(plan.to_list(), indent=2, default=_jsonable) + "\n")
    else:
        sys.stdout.write(plan.describe() + "\n")
    return 0


def _jsonable(v):
    from pyrunc.record import asdict, is_record
    if is_record(v) and not isinstance(v, type):
        return asdict(v)
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    return str(v)
