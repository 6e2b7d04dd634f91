"""Every shim call starts a fresh interpreter: the hot commands must stay lean.

The probes run the way the installed launcher runs pyrunc (python -I -S, the
import path set by hand, see pyrunc/launcher.py) and report sys.modules
without importing anything themselves.
"""
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Modules whose import alone costs a command milliseconds: json and re (~5 ms:
# they bring enum, functools, collections), dataclasses and inspect (~5 ms, and
# ~0.3 ms per class defined), signal and socket (enum again), jsonschema and
# pyroute2 (tens of ms), prctl, subprocess, argparse.
HEAVY = ("jsonschema", "pyroute2", "dataclasses", "inspect", "subprocess", "argparse", "prctl",
         "json", "re", "enum", "signal", "socket", "selectors", "functools", "collections")


def _modules_after(code, *args):
    probe = (f"import sys\nsys.path += {[REPO]!r}\n{code}\n"
             "sys.stdout.write('\\n@@' + ' '.join(sorted(sys.modules)) + '\\n')\n")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe, *args],
                         capture_output=True, text=True, check=True).stdout
    modules = set(out.rsplit("@@", 1)[1].split())
    return modules


def _heavy(modules):
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


@pytest.mark.parametrize("argv", [["state", "nope"], ["start", "nope"], ["kill", "nope", "9"],
                                  ["kill", "nope", "KILL"], ["delete", "--force", "nope"],
                                  ["list"], ["list", "--format", "json"]])
def test_hot_commands_import_nothing_heavy(tmp_path, argv):
    modules = _modules_after("from pyrunc.cli import main\nmain(sys.argv[1:])",
                             "--root", str(tmp_path), *argv)
    assert "pyrunc.cli" in modules   # the probe really ran pyrunc
    assert _heavy(modules) == [], f"{argv[0]} imported {_heavy(modules)}"


def test_state_of_a_real_container_imports_nothing_heavy(tmp_path):
    _fake_running_container(tmp_path, "c1")
    modules = _modules_after("from pyrunc.cli import main\nmain(sys.argv[1:])",
                             "--root", str(tmp_path), "state", "c1")
    assert "pyrunc.state" in modules
    assert _heavy(modules) == []


def test_create_path_imports_nothing_heavy(tmp_path):
    """What create loads before it forks: config, validation, plan, executor,
    every handler the plan needs.  (Running it needs root; planning does not.)"""
    (tmp_path / "rootfs").mkdir()
    code = f"""
import json as _j  # only to write the bundle, then forgotten
from pyrunc.spec.default import default_spec
with open({str(tmp_path / 'config.json')!r}, 'w') as f:
    _j.dump(default_spec(), f)
for name in [m for m in sys.modules if m.split('.')[0] in ('json', 're', 'enum', 'functools',
                                                          'collections', 'operator', 'types')]:
    del sys.modules[name]
import pyrunc.cli, pyrunc.commands.create, pyrunc.commands.run, pyrunc.lifecycle
from pyrunc.spec.loader import load_bundle
from pyrunc.plan.build import build_plan
config = load_bundle({str(tmp_path)!r})
plan = build_plan(config, cid="c1")
from pyrunc.executor.launch import launch
from pyrunc.executor.init import preload
preload(plan)
import pyrunc.exec_into, pyrunc.commands.exec
"""
    modules = _modules_after(code)
    assert "pyrunc.executor.process" in modules and "pyrunc.spec.fastvalidate" in modules
    assert _heavy(modules) == [], f"create imported {_heavy(modules)}"


def _fake_running_container(root, cid):
    """A state dir whose 'init' is this test process: status running, no cgroups."""
    sys.path.insert(0, REPO)
    from pyrunc.state import Container, State, proc_start_time
    c = Container(str(root), cid)
    c.make_dir()
    c.save(State(id=cid, pid=os.getpid(), bundle="/b", rootfs="/b/rootfs",
                 created="2026-01-01T00:00:00.000000000Z", annotations={"a": "b"},
                 init_start_time=proc_start_time(os.getpid()), status_hint="created",
                 config={"ociVersion": "1.2.0", "process": {"args": ["sh"]}}))
    c.unlock()


def _best_ms(argv, runs=7):
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def test_state_wall_time_stays_close_to_a_bare_interpreter(tmp_path):
    """`pyrunc state` through the launcher, against `python -I -S -c pass`, best
    of 7 each, interleaved so both see the same machine.  ~1.5x when this was
    written (a bare 3.11 start is most of it); 2.5x means something heavy crept in."""
    from pyrunc import launcher
    exe = tmp_path / "pyrunc"
    launcher.write(str(exe), image=str(tmp_path / "_image"), boot=str(tmp_path / "boot"))
    _fake_running_container(tmp_path / "root", "c1")
    state = [str(exe), "--root", str(tmp_path / "root"), "state", "c1"]
    out = subprocess.run(state, capture_output=True, text=True, check=True).stdout
    assert '"status": "running"' in out
    bare = [sys.executable, "-I", "-S", "-c", "pass"]
    pyrunc_ms = bare_ms = float("inf")
    for _ in range(3):
        bare_ms = min(bare_ms, _best_ms(bare, 3))
        pyrunc_ms = min(pyrunc_ms, _best_ms(state, 3))
    assert pyrunc_ms <= 2.5 * bare_ms, \
        f"pyrunc state took {pyrunc_ms:.1f} ms, a bare interpreter {bare_ms:.1f} ms"
