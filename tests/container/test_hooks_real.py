"""OCI hooks in real containers: each stage once, at its moment, in its
namespace, with the state JSON on stdin, its args and env; timeouts and the
failure rules (createRuntime fails create and leaves nothing; poststart and
poststop failures are warnings)."""
import json
import os

import pytest

from tests.container.realkit import error_line, ns_link, wait_for, wait_status

# Records what one hook run saw into OUT/<stage>.*; appends the stage to OUT/order.
HOOK_SH = r"""#!/bin/sh
stage=$1; out=$2
cat > "$out/$stage.json"
echo "$0 $*" > "$out/$stage.args"
env | sort > "$out/$stage.env"
readlink /proc/self/ns/mnt > "$out/$stage.mnt"
pid=$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' "$out/$stage.json")
if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' < "/proc/$pid/cmdline" > "$out/$stage.cmdline"
fi
if [ -n "$4" ]; then
    if [ -e "$4" ]; then echo present; else echo gone; fi > "$out/$stage.path"
fi
echo "$stage" >> "$out/order"
"""

HOST_STAGES = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")


@pytest.fixture
def rt(pyrunc, make_runtime, tmp_path):
    r = make_runtime(pyrunc, name="pyrunc")
    r.log_path = str(tmp_path / "pyrunc-log.json")
    return r


@pytest.fixture
def out(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    os.chmod(d, 0o777)
    (tmp_path / "hook.sh").write_text(HOOK_SH)
    return d


def _host_hook(tmp_path, out, stage, **kw):
    return {"path": "/bin/sh", "args": ["sh", str(tmp_path / "hook.sh"), stage, str(out), "x y"],
            "env": ["HOOKVAR=v-" + stage, "PATH=/usr/bin:/bin"], **kw}


def _all_hooks_bundle(bundle_factory, tmp_path, out, args):
    hooks = {s: [_host_hook(tmp_path, out, s)] for s in HOST_STAGES}
    # startContainer: the path resolves in the container, and runs there
    hooks["startContainer"] = [{"path": "/bin/sh",
                                "args": ["sh", "/hook.sh", "startContainer", "/out"],
                                "env": ["HOOKVAR=v-startContainer", "PATH=/bin"]}]
    bundle = bundle_factory(args=args, files={"hook.sh": HOOK_SH, "out/.keep": ""},
                            config_overrides={"hooks": hooks})
    bundle.config["mounts"].append({"destination": "/out", "type": "bind",
                                    "source": str(out), "options": ["rbind", "rw"]})
    bundle.write_config()
    return bundle


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _mark(out, what):
    with open(out / "order", "a") as f:
        f.write(f"<{what}>\n")


def _order(out):
    return (out / "order").read_text().split()


def _state(out, stage):
    return json.loads((out / f"{stage}.json").read_text())


def test_every_stage_once_in_order(rt, bundle_factory, container_id, tmp_path, out):
    bundle = _all_hooks_bundle(bundle_factory, tmp_path, out, ["sleep", "30"])
    cid = container_id()
    # poststop also reports whether the state dir still exists
    bundle.config["hooks"]["poststop"][0]["args"].append(os.path.join(rt.root, cid))
    bundle.write_config()
    r = rt.create(cid, bundle)
    assert r.returncode == 0, r.stderr
    _mark(out, "created")
    pid = rt.state_json(cid)["pid"]
    mnt = ns_link(pid, "mnt")
    assert rt.start(cid).returncode == 0
    _mark(out, "started")
    assert rt.delete(cid, force=True).returncode == 0
    _mark(out, "deleted")
    assert _order(out) == ["prestart", "createRuntime", "createContainer", "<created>",
                           "startContainer", "poststart", "<started>", "poststop",
                           "<deleted>"]

    for stage in ("prestart", "createRuntime", "createContainer"):
        st = _state(out, stage)
        assert (st["id"], st["status"], st["pid"]) == (cid, "creating", pid), stage
        assert st["bundle"] == bundle.path and st["ociVersion"]
    assert _state(out, "startContainer")["status"] == "created"
    st = _state(out, "poststart")
    assert (st["status"], st["pid"]) == ("running", pid)
    assert _state(out, "poststop")["status"] == "stopped"
    assert (out / "poststop.path").read_text() == "gone\n", "poststop ran before the delete"

    # namespaces: the runtime's for prestart/createRuntime/poststart/poststop,
    # the container's for createContainer and startContainer
    host_mnt = ns_link("self", "mnt")
    for stage in ("prestart", "createRuntime", "poststart", "poststop"):
        assert (out / f"{stage}.mnt").read_text().strip() == host_mnt, stage
    for stage in ("createContainer", "startContainer"):
        assert (out / f"{stage}.mnt").read_text().strip() == mnt, stage

    # createRuntime ran while the init was alive, before the user program
    assert "sleep" not in (out / "createRuntime.cmdline").read_text()
    # poststart runs after the user program was exec'd (runtime-spec)
    assert (out / "poststart.cmdline").read_text().strip() == "sleep 30"


def test_args_and_env_as_given(rt, bundle_factory, container_id, tmp_path, out):
    bundle = _all_hooks_bundle(bundle_factory, tmp_path, out, ["true"])
    cid = container_id()
    r = rt.call("run", "--bundle", bundle, cid, env={"PATH": "/usr/bin:/bin", "LEAKME": "1"})
    assert r.returncode == 0, r.stderr
    for stage in HOST_STAGES:
        assert (out / f"{stage}.args").read_text() == f"{tmp_path / 'hook.sh'} {stage} {out} x y\n"
    for stage in HOST_STAGES + ("startContainer",):
        env = (out / f"{stage}.env").read_text().splitlines()
        assert f"HOOKVAR=v-{stage}" in env, (stage, env)
        assert not [e for e in env if e.startswith("LEAKME=")], f"{stage} got pyrunc's env"
    assert (out / "startContainer.args").read_text() == "/hook.sh startContainer /out\n"


def test_hook_stdout_stderr_do_not_reach_client(rt, bundle_factory, container_id):
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null; echo hook-out; "
                                        "echo hook-err >&2"]}
    bundle = bundle_factory(args=["true"], config_overrides={
        "hooks": {s: [hook] for s in HOST_STAGES}})
    r = rt.run(container_id(), bundle)
    assert r.returncode == 0, r.stderr
    assert "hook-" not in r.stdout + r.stderr


def test_create_runtime_failure_fails_create_and_leaves_nothing(rt, bundle_factory,
                                                                container_id, tmp_path, out):
    hooks = {"createRuntime": [_host_hook(tmp_path, out, "createRuntime"),
                               {"path": "/bin/false"},
                               _host_hook(tmp_path, out, "never")],
             "poststop": [_host_hook(tmp_path, out, "poststop")]}
    bundle = bundle_factory(args=["sleep", "30"], config_overrides={"hooks": hooks})
    cid = container_id()
    r = rt.create(cid, bundle)
    assert r.returncode == 1
    assert "exit status 1" in error_line(r.stderr)
    # the first hook ran, the failing one stopped the rest
    assert _order(out)[0] == "createRuntime" and "never" not in _order(out)
    pid = _state(out, "createRuntime")["pid"]
    assert wait_for(lambda: not _alive(pid), 2), "the init outlived the failed create"
    assert rt.state(cid).returncode == 1
    assert not os.path.exists(os.path.join(rt.root, cid))


@pytest.mark.parametrize("stage", ["poststart", "poststop"])
def test_late_hook_failure_is_a_warning(rt, bundle_factory, container_id, stage):
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 4"]}
    bundle = bundle_factory(args=["sleep", "30"], config_overrides={"hooks": {stage: [hook]}})
    cid = container_id()
    assert rt.create(cid, bundle).returncode == 0
    r = rt.start(cid)
    assert r.returncode == 0, r.stderr
    assert rt.state_json(cid)["status"] == "running"
    r = rt.delete(cid, force=True)
    assert r.returncode == 0, r.stderr
    assert rt.state(cid).returncode == 1
    warnings = [e for e in rt.log_entries() if e["level"] == "warning"]
    assert len(warnings) == 1 and stage in warnings[0]["msg"] and "exit status 4" in \
        warnings[0]["msg"], rt.log_entries()


def test_start_container_failure_stops_the_container(rt, bundle_factory, container_id):
    """A failing startContainer hook: the user program never runs."""
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]}
    bundle = bundle_factory(args=["sleep", "30"],
                            config_overrides={"hooks": {"startContainer": [hook]}})
    cid = container_id()
    assert rt.create(cid, bundle).returncode == 0
    rt.start(cid)
    wait_status(rt, cid, "stopped", timeout=3)
    assert rt.delete(cid).returncode == 0


def test_hook_timeout_enforced(rt, bundle_factory, container_id, tmp_path):
    import time
    hook = {"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}
    bundle = bundle_factory(args=["true"], config_overrides={"hooks": {"prestart": [hook]}})
    cid = container_id()
    t0 = time.monotonic()
    r = rt.create(cid, bundle)
    took = time.monotonic() - t0
    assert r.returncode == 1 and "timeout" in error_line(r.stderr)
    assert 0.9 < took < 5, took
    assert rt.state(cid).returncode == 1


def test_poststop_runs_on_delete_of_created(rt, bundle_factory, container_id, tmp_path, out):
    """A created-but-never-started container still gets its poststop."""
    hooks = {"poststop": [_host_hook(tmp_path, out, "poststop")],
             "poststart": [_host_hook(tmp_path, out, "poststart")]}
    bundle = bundle_factory(args=["sleep", "30"], config_overrides={"hooks": hooks})
    cid = container_id()
    assert rt.create(cid, bundle).returncode == 0
    assert rt.delete(cid).returncode == 0
    assert _order(out) == ["poststop"]
    assert _state(out, "poststop")["id"] == cid


def test_runtime_hooks_always_see_the_init_pid(rt, bundle_factory, container_id, tmp_path):
    """With a pid namespace the init's pid (from the intermediate process) and
    its "rootfs ready" arrive in either order; the hooks must get the pid."""
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"cat >> {tmp_path}/states"]}
    bundle = bundle_factory(args=["true"], config_overrides={"hooks": {"createRuntime": [hook]}})
    for _ in range(6):
        cid = container_id()
        assert rt.create(cid, bundle).returncode == 0
        pid = rt.state_json(cid)["pid"]
        assert rt.delete(cid).returncode == 0
        with open(tmp_path / "states") as f:
            last = json.loads(f.read())
        assert last["pid"] == pid
        os.unlink(tmp_path / "states")


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_hook_without_env_inherits_the_runtimes(request, make_runtime, bundle_factory,
                                                container_id, tmp_path, runtime):
    """runc runs a hook that has no env with its own environment (Go's nil
    exec.Cmd.Env); hooks such as nvidia's find their tools through PATH."""
    r_ = make_runtime(request.getfixturevalue(runtime), name=runtime)
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"env > {tmp_path}/env"]}
    bundle = bundle_factory(args=["true"], config_overrides={"hooks": {"createRuntime": [hook]}})
    r = r_.call("run", "--bundle", bundle, container_id(),
                env={"PATH": "/usr/bin:/bin", "FROM_CLIENT": "1"})
    assert r.returncode == 0, r.stderr
    env = (tmp_path / "env").read_text().splitlines()
    assert "FROM_CLIENT=1" in env and "PATH=/usr/bin:/bin" in env


def test_run_starts_at_once_and_still_runs_poststart(rt, bundle_factory, container_id,
                                                    tmp_path, out):
    """`run` without startContainer hooks has its init exec the program as soon
    as it is set up (no exec fifo, no waiting pyrunc-init), then runs poststart:
    after the program was exec'd, before run returns."""
    bundle = bundle_factory(args=["sleep", "30"], config_overrides={
        "hooks": {"poststart": [_host_hook(tmp_path, out, "poststart")]}})
    cid = container_id()
    r = rt.run(cid, bundle, "--detach")
    assert r.returncode == 0, r.stderr
    st = rt.state_json(cid)
    assert st["status"] == "running"
    assert not os.path.exists(os.path.join(rt.root, cid, "exec.fifo"))
    assert (out / "poststart.cmdline").read_text().strip() == "sleep 30"
    assert _state(out, "poststart")["status"] == "running"
    assert rt.delete(cid, force=True).returncode == 0
