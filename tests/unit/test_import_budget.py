"""Every shim call starts a fresh interpreter: the hot commands must stay lean."""
import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from pyrunc.cli import main
main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)))
"""

HEAVY = ("jsonschema", "pyroute2", "dataclasses", "subprocess", "argparse", "prctl")


@pytest.mark.parametrize("argv", [["state", "nope"], ["start", "nope"], ["kill", "nope", "9"],
                                  ["delete", "--force", "nope"], ["list"]])
def test_hot_commands_import_nothing_heavy(tmp_path, argv):
    out = subprocess.run([sys.executable, "-c", PROBE, "--root", str(tmp_path)] + argv,
                         capture_output=True, text=True, check=True).stdout
    modules = set(json.loads(out.strip().splitlines()[-1]))
    assert "pyrunc.cli" in modules   # the probe really ran pyrunc
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == [], f"{argv[0]} imported {loaded}"
