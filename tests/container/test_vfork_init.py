"""create's init runs in the runtime's memory until it execs (CloneInit.vfork,
pyrunc/clone_vm.c): no page of the runtime is copied for it.  What that asks
of the runtime is tested here: it takes that road only where the plan allows,
and it survives whatever the init dies of, wherever it dies."""
import re
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")]


def _clone3_flags(pyrunc, args, tmp_path):
    """The flags of the clone3() calls `pyrunc ARGS` makes, as strace names them."""
    log = tmp_path / "strace.log"
    r = subprocess.run(["strace", "-f", "-e", "trace=clone3", "-o", str(log), str(pyrunc), *args],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout, re.findall(r"clone3\(\{flags=([A-Z_|]+)", log.read_text())


def test_run_vforks_the_init_into_its_namespaces(pyrunc, bundle_factory, container_id,
                                                 state_root, tmp_path):
    bundle = bundle_factory(args=["sh", "-c", "echo pid $$"])
    out, flags = _clone3_flags(pyrunc, ["--root", str(state_root), "run", "-b", str(bundle),
                                        container_id()], tmp_path)
    assert out == "pid 1\n"
    assert len(flags) == 1
    assert {"CLONE_VM", "CLONE_VFORK", "CLONE_NEWPID", "CLONE_NEWNS"} <= set(flags[0].split("|"))


def test_an_init_that_waits_for_runtime_hooks_is_forked(pyrunc, bundle_factory, container_id,
                                                        state_root, tmp_path):
    hooks = {"createRuntime": [{"path": "/bin/true"}]}
    bundle = bundle_factory(config_overrides={"hooks": hooks}, args=["true"])
    _, flags = _clone3_flags(pyrunc, ["--root", str(state_root), "run", "-b", str(bundle),
                                      container_id()], tmp_path)
    assert len(flags) == 1 and "CLONE_VM" not in flags[0] and "CLONE_NEWPID" in flags[0]


def test_exec_vforks_its_child_into_the_containers_cgroup(make_runtime, pyrunc, bundle_factory,
                                                         container_id, tmp_path):
    """exec's child (ExecSpawn.vfork, plan/execspawn.py) shares the runtime's memory until it
    execs pyrunc-init, born in the container's cgroup2 directory when there is one;
    the program still runs in the container, and a failing one is reported."""
    rt = make_runtime(pyrunc)
    cid = container_id()
    assert rt.run(cid, bundle_factory(args=["sleep", "100"]), "-d").returncode == 0
    try:
        out, flags = _clone3_flags(pyrunc, ["--root", rt.root, "exec", cid, "sh", "-c",
                                            "echo pid $$; cat /proc/self/cgroup"], tmp_path)
        assert len(flags) == 1 and {"CLONE_VM", "CLONE_VFORK"} <= set(flags[0].split("|"))
        lines = out.splitlines()
        assert lines[0] != "pid 1" and f":/{cid}" in "\n".join(lines[1:])
        r = rt.call("exec", cid, "/nonexistent")
        assert r.returncode != 0 and "/nonexistent" in r.stderr
        assert rt.call("exec", cid, "sh", "-c", "exit 3").returncode == 3
    finally:
        assert rt.delete(cid, force=True).returncode == 0


def test_an_init_killed_in_a_blocking_call_leaves_the_runtime_whole(make_runtime, pyrunc,
                                                                     bundle_factory,
                                                                     container_id):
    """Under this profile the init dies in memfd_create (making pyrunc-init's
    program file, its filter loaded), a call Python makes without the GIL:
    the runtime, asleep in the vfork meanwhile, must take the GIL back rather
    than abort ("Fatal Python error"), and carry on."""
    rt = make_runtime(pyrunc)
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["memfd_create"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    bundle = bundle_factory(config_overrides={"linux": {"seccomp": seccomp}}, args=["true"])
    cid = container_id()
    r = rt.create(cid, bundle)
    assert "Fatal Python error" not in r.stderr and r.returncode in (0, 1), r.stderr
    # the init is gone: create said so, or (as runc does when its init dies
    # after reporting ready) the container is stopped
    if r.returncode == 0:
        assert rt.state_json(cid)["status"] == "stopped"
        assert rt.delete(cid).returncode == 0
    ok = container_id()
    r = rt.run(ok, bundle_factory(args=["sh", "-c", "echo fine"]))
    assert (r.returncode, r.stdout) == (0, "fine\n"), r.stderr
