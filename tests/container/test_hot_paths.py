"""The shim's calls on a real container take the cheap paths and still leave
nothing behind: start and delete read state.json's head without the JSON
parser, and the delete of a stopped container whose cgroups rmdir at once
loads no cgroup manager (pyrunc/lifecycle.py delete)."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from tests.container.realkit import start_and_wait_exit, wait_for, without_namespace

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLOW_PATH = {"_json", "pyrunc.fastjson", "pyrunc.cgroups.manager", "pyrunc.commands"}


@pytest.fixture
def rt(pyrunc, make_runtime):
    return make_runtime(pyrunc, name="pyrunc")


def _probe(rt, *argv):
    """`pyrunc --root R argv...` in a fresh interpreter, as the launcher runs it:
    (exit code, stderr, the modules it loaded)."""
    import _cffi_backend   # the venv's site-packages, for create and run
    paths = [REPO, os.path.dirname(_cffi_backend.__file__)]
    probe = (f"import sys\nsys.path += {paths!r}\n"
             "from pyrunc.cli import main\ncode = main(sys.argv[1:])\n"
             "sys.stdout.write('\\n@@' + str(code) + ' ' + ' '.join(sorted(sys.modules)) + '\\n')\n")
    # files, not pipes: a created container's init holds on to its stdio
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        subprocess.run([sys.executable, "-I", "-S", "-c", probe, "--root", rt.root, *argv],
                       stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=60)
        out.seek(0)
        err.seek(0)
        code, *modules = out.read().rsplit("@@", 1)[1].split()
        return int(code), err.read(), set(modules)


def _saved_cgroups(rt, cid):
    with open(os.path.join(rt.root, cid, "state.json")) as f:
        st = json.load(f)
    return sorted(set(st["cgroups"].values()) | set(st["cgroups_created"]))


def test_start_and_delete_of_a_short_container_read_no_json(rt, bundle_factory, container_id):
    cid = container_id()
    b = bundle_factory(args=["true"])
    r = rt.create(cid, b)
    assert r.returncode == 0, r.stderr
    dirs = _saved_cgroups(rt, cid)
    assert dirs and all(os.path.isdir(d) for d in dirs)
    code, err, modules = _probe(rt, "start", cid)
    assert (code, err) == (0, "") and modules & SLOW_PATH == set()
    assert wait_for(lambda: json.loads(rt.state(cid).stdout)["status"] == "stopped")
    code, err, modules = _probe(rt, "delete", cid)
    assert (code, err) == (0, "") and modules & SLOW_PATH == set()
    assert [d for d in dirs if os.path.exists(d)] == []
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_run_create_and_exec_load_no_os_resource_or_socket(rt, bundle_factory,
                                                            container_id):
    """os costs a create ~0.7 ms, resource and _socket ~0.1 each (pyrunc/pathstr.py,
    executor/sync.py)."""
    heavy = {"os", "posixpath", "resource", "_socket", "jsonschema", "pyroute2", "subprocess"}
    code, err, modules = _probe(rt, "run", "-b", str(bundle_factory(args=["true"])),
                                container_id())
    assert (code, err) == (0, "") and modules & heavy == set()
    cid = container_id()
    code, err, modules = _probe(rt, "create", "-b", str(bundle_factory(args=["true"])), cid)
    assert (code, err) == (0, "") and modules & heavy == set()
    assert rt.delete(cid, force=True).returncode == 0
    cid = container_id()
    assert rt.run(cid, bundle_factory(args=["sleep", "100"]), "-d").returncode == 0
    code, err, modules = _probe(rt, "exec", cid, "true")
    assert (code, err) == (0, "") and modules & heavy == set()
    assert rt.delete(cid, force=True).returncode == 0


def test_delete_of_a_stopped_init_that_left_a_process(rt, bundle_factory, base_config,
                                                      container_id):
    """No pid namespace: the init's exit does not end the sleep it started, so
    the cgroups refuse rmdir, and delete kills the sleep, waits, removes them."""
    cid = container_id()
    config = without_namespace(json.loads(json.dumps(base_config)), "pid")
    b = bundle_factory(config=config, args=["sh", "-c", "sleep 600 & exit 0"])
    r = rt.create(cid, b)
    assert r.returncode == 0, r.stderr
    dirs = _saved_cgroups(rt, cid)
    start_and_wait_exit(rt, cid)
    procs = os.path.join(json.load(open(os.path.join(rt.root, cid, "state.json")))
                         ["cgroups"]["pids"], "cgroup.procs")
    assert wait_for(lambda: len(open(procs).read().split()) == 1)
    sleeper = int(open(procs).read())
    code, err, modules = _probe(rt, "delete", cid)
    assert (code, err) == (0, "")
    assert "pyrunc.cgroups.manager" in modules   # the slow path, as it must be
    assert [d for d in dirs if os.path.exists(d)] == []
    assert not os.path.exists(os.path.join(rt.root, cid))
    try:
        with open(f"/proc/{sleeper}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "reaped"
    assert state in ("Z", "X", "reaped")   # a zombie until pid 1 reaps it
