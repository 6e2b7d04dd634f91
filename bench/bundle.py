"""The one bundle every runtime runs: busybox rootfs + `runc spec`, adjusted.

Two config.json files share the rootfs (root.path is absolute): `true` for the
run/shim/concurrency rows, and `sleep` for the rows that need a running
container (exec, state, kill).  Nothing else differs between them, and no
runtime gets a config of its own.
"""
import json
import os
import subprocess
from dataclasses import dataclass

from pyrunc.demo import build_busybox_rootfs

SLEEP_ARGS = ["sleep", "3600"]


@dataclass(frozen=True)
class Bundles:
    true: str     # process.args ["true"]
    sleep: str    # process.args ["sleep", "3600"]
    rootfs: str


def _write(bundle, config):
    os.makedirs(bundle, exist_ok=True)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def make_bundles(tmp, runc):
    rootfs = build_busybox_rootfs(os.path.join(tmp, "rootfs"))
    spec_dir = os.path.join(tmp, "spec")
    os.makedirs(spec_dir)
    subprocess.run([runc, "spec", "--bundle", spec_dir], check=True)
    with open(os.path.join(spec_dir, "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["root"]["path"] = rootfs
    # the same (absent) cgroupsPath for all: each runtime derives it from the id
    config.get("linux", {}).pop("cgroupsPath", None)
    bundles = Bundles(os.path.join(tmp, "b-true"), os.path.join(tmp, "b-sleep"), rootfs)
    config["process"]["args"] = ["true"]
    _write(bundles.true, config)
    config["process"]["args"] = SLEEP_ARGS
    _write(bundles.sleep, config)
    return bundles
