import json
import os

from pyrunc.errors import UsageError


def main(g, a):
    from pyrunc.spec.default import default_spec
    bundle = a.flags.get("bundle") or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise UsageError("File config.json exists. Remove it first")
    with open(path, "w") as f:
        json.dump(default_spec(rootless=a.flags.get("rootless", False)), f, indent="\t")
    return 0
