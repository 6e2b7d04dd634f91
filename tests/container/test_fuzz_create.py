"""Fuzzed config.json and process.json through a real `pyrunc create` and
`pyrunc exec --process`, as a client runs them (a subprocess, --log-format json).

For every example: no traceback; a failure is exactly one `pyrunc: ...` line
on stderr, the same msg as the last error in the JSON log (every log line
parses); a successful create can be started and `delete --force`d; and
afterwards nothing is left: state dir, cgroup, mount, process, fd of pytest.

The documents are the real clients' configs made portable (busybox rootfs,
no hooks, no host files that do not exist here) and generated ones, with at
most one mutation each (tests/container/fuzzkit.py), so that most get past
the validator into the runtime.  A bounded, derandomized number of
examples, so CI sees the same ones every run.
"""
import copy
import json
import os
import secrets

import pytest
from hypothesis import HealthCheck, given, settings

from tests.container import fuzzkit
from tests.container.faultkit import LogTail, check_result, host_leaks, new_watch
from tests.container.helpers import copy_rootfs

pytestmark = pytest.mark.root

# PYRUNC_FUZZ_EXAMPLES=1000 for a deeper (and then random, not derandomized) local run
EXAMPLES = int(os.environ.get("PYRUNC_FUZZ_EXAMPLES", "60"))
CONTAINER_FUZZ = settings(max_examples=EXAMPLES, derandomize="PYRUNC_FUZZ_EXAMPLES" not in os.environ,
                          database=None, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow, HealthCheck.data_too_large])


def portable(doc, base):
    """A real client's config, runnable here: our rootfs and command, no hooks
    (a fuzzed hook could run anything on the host), no binds of host files
    that only the client's machine has."""
    doc = copy.deepcopy(doc)
    doc.pop("hooks", None)
    doc["root"] = {"path": "rootfs", "readonly": True}
    doc["process"]["args"] = ["true"]
    doc["process"]["terminal"] = False
    doc["process"]["env"] = base["process"]["env"]
    doc["mounts"] = [m for m in doc.get("mounts", [])
                     if not (m.get("source", "").startswith("/") and not os.path.exists(m["source"]))]
    return doc


def host_safe(doc, cid):
    """Keep a fuzzed config from touching the host outside what the leak check
    sees: hooks only when they cannot run anything, sysctls only inside new
    namespaces, the cgroup below a directory named after the id."""
    if not isinstance(doc, dict):
        return doc
    hooks = doc.get("hooks")
    if hooks is not None and _runnable_hook(hooks):
        doc.pop("hooks")
    linux = doc.get("linux")
    if isinstance(linux, dict):
        ns = linux.get("namespaces")
        private = {n.get("type") for n in ns if isinstance(n, dict) and "path" not in n
                   and isinstance(n.get("type"), str)} if isinstance(ns, list) else set()
        if linux.get("sysctl") and not {"network", "ipc", "uts"} <= private:
            linux.pop("sysctl")
        path = linux.get("cgroupsPath")
        if isinstance(path, str):
            linux["cgroupsPath"] = f"{cid}-fz/{path}"
    return doc


def _runnable_hook(hooks):
    stages = hooks.values() if isinstance(hooks, dict) else [hooks]
    for stage in stages:
        for h in stage if isinstance(stage, list) else [stage]:
            path = h.get("path") if isinstance(h, dict) else None
            if not isinstance(path, str):
                continue
            try:
                if os.path.isfile(path) and os.access(path, os.X_OK):
                    return True
            except ValueError:
                pass
    return False


@pytest.fixture
def env(pyrunc, make_runtime, busybox_rootfs, base_config, tmp_path, state_root, leak_check):
    rt = make_runtime(pyrunc, name="pyrunc", timeout=30)
    rt.log_path = str(tmp_path / "pyrunc-log.json")   # outside the state root
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    copy_rootfs(busybox_rootfs, str(bundle / "rootfs"))
    base = copy.deepcopy(base_config)
    base["process"]["terminal"] = False
    base["process"]["args"] = ["true"]
    return dict(rt=rt, log=LogTail(rt.log_path), bundle=str(bundle), base=base,
                tmp=tmp_path, state_root=state_root, watch=leak_check)


def _bases(base):
    real = [portable(d, base) for d in fuzzkit.real_configs().values()]
    return real + [base], fuzzkit.vocabulary(real + [base])


def _write_config(bundle, doc):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write(fuzzkit.dumps(doc))


def _one_create(env, doc):
    rt, log = env["rt"], env["log"]
    cid = "fz-" + secrets.token_hex(4)
    env["watch"].ids.add(cid)
    doc = host_safe(doc, cid)
    _write_config(env["bundle"], doc)
    watch = new_watch([env["tmp"]], env["state_root"], cid)
    try:
        r = rt.create(cid, env["bundle"])
        msg = check_result(r, log, "create")
        if msg is None:
            s = rt.start(cid)
            check_result(s, log, "start")
            d = rt.delete(cid, force=True)
            check_result(d, log, "delete --force")
        else:
            assert not os.path.lexists(os.path.join(rt.root, cid)), f"failed create left {cid}"
    finally:
        leaks = host_leaks(watch, cid, rt.root)
    assert not leaks, f"example left: {leaks}\nconfig: {json.dumps(doc)[:2000]}"
    return msg


# The strategies need the session's base config, so each test builds its own
# @given inside; hypothesis still derandomizes and shrinks as usual.

def test_fuzzed_configs_through_create(env):
    bases, keys = _bases(env["base"])
    outcomes = []
    docs = fuzzkit.mutated(fuzzkit.generated_config(env["base"], bases, wild=False), keys,
                           min_mutations=0, max_mutations=1) | \
        fuzzkit.mutated(bases, keys, min_mutations=0, max_mutations=1)

    @CONTAINER_FUZZ
    @given(doc=docs)
    def run(doc):
        outcomes.append(_one_create(env, doc))
    run()
    # a fuzzer that never got past the validator would prove little
    created = sum(1 for o in outcomes if o is None)
    print(f"\ncreate fuzz: {created} of {len(outcomes)} examples created, started, deleted")
    assert created >= EXAMPLES // 5, \
        f"only {created} of {len(outcomes)} examples created: {sorted(map(str, outcomes))}"


def test_fuzzed_exec_process(env):
    rt, log = env["rt"], env["log"]
    base = copy.deepcopy(env["base"])
    base["process"]["args"] = ["sleep", "600"]
    _write_config(env["bundle"], base)
    cid = "fx-" + secrets.token_hex(4)
    env["watch"].ids.add(cid)
    assert rt.create(cid, env["bundle"]).returncode == 0
    try:
        assert rt.start(cid).returncode == 0
        procs = [dict(p, args=["true"], terminal=False) for p in fuzzkit.real_processes().values()]
        procs.append(dict(env["base"]["process"]))
        keys = fuzzkit.vocabulary(procs)
        pfile = str(env["tmp"] / "process.json")
        nostate = env["tmp"] / "no-state"
        nostate.mkdir()
        outcomes = []

        @CONTAINER_FUZZ
        @given(doc=fuzzkit.mutated(procs, keys, min_mutations=0, max_mutations=1))
        def run(doc):
            with open(pfile, "w") as f:
                f.write(fuzzkit.dumps(doc))
            # not the real state root: the running container's state is not a leak
            watch = new_watch([env["tmp"]], nostate)
            try:
                r = rt.call("exec", "--process", pfile, cid, detached_io=True)
                assert "Traceback" not in r.stderr, r.stderr
                pyrunc = [ln for ln in r.stderr.splitlines() if ln.startswith("pyrunc:")]
                # the program itself may print anything; pyrunc says at most one line
                assert len(pyrunc) <= 1, r.stderr
                if pyrunc:
                    check_result(r, log, "exec")
                else:
                    log.new_entries()
                outcomes.append(r.returncode)
                st = json.loads(rt.state(cid).stdout)
                assert st["status"] == "running", f"exec broke the container: {st}"
            finally:
                leaks = host_leaks(watch)
            assert not leaks, f"exec left: {leaks}\nprocess.json: {json.dumps(doc)[:2000]}"
        run()
        print(f"\nexec fuzz: {outcomes.count(0)} of {len(outcomes)} processes ran and exited 0")
        assert outcomes.count(0) >= EXAMPLES // 5, f"only {outcomes.count(0)} execs ran"
    finally:
        assert rt.delete(cid, force=True).returncode == 0


# Damage to the file itself, through the real command line: in a fresh pyrunc
# process the JSON error paths run without the json package imported, which
# no in-process test sees (a truncated file once ended in a SystemError).
DAMAGES = {
    "empty": lambda raw: b"",
    "one_byte": lambda raw: raw[:1],
    "truncated_quarter": lambda raw: raw[: len(raw) // 4],
    "truncated_half": lambda raw: raw[: len(raw) // 2],
    "truncated_end": lambda raw: raw[:-1],
    "invalid_utf8": lambda raw: raw[:20] + b"\xff\xfe" + raw[20:],
    "utf8_bom": lambda raw: b"\xef\xbb\xbf" + raw,
    "nul_bytes": lambda raw: raw[:10] + b"\0\0\0\0" + raw[10:],
    "deep_nesting": lambda raw: b"[" * 100000 + b"]" * 100000,
    "huge_integer": lambda raw: b'{"ociVersion": ' + b"9" * 5000 + b"}",
    "nan": lambda raw: raw.replace(b'"ociVersion": "', b'"x": NaN, "ociVersion": "', 1),
    "trailing_garbage": lambda raw: raw + b"}",
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_files_through_the_cli(env, damage):
    rt, log = env["rt"], env["log"]
    raw = fuzzkit.dumps(env["base"]).encode()
    with open(os.path.join(env["bundle"], "config.json"), "wb") as f:
        f.write(DAMAGES[damage](raw))
    cid = "fd-" + secrets.token_hex(4)
    env["watch"].ids.add(cid)
    watch = new_watch([env["tmp"]], env["state_root"], cid)
    r = rt.create(cid, env["bundle"])
    msg = check_result(r, log, "create")
    if damage != "nan":   # NaN where nothing reads it: json (and so pyrunc) accepts it
        assert r.returncode == 1 and msg, r
    else:
        assert rt.delete(cid, force=True).returncode == 0
    # the same bytes as exec's process.json, against a container that runs
    _write_config(env["bundle"], dict(env["base"], process=dict(env["base"]["process"],
                                                                args=["sleep", "60"])))
    live = "fd-" + secrets.token_hex(4)
    env["watch"].ids.add(live)
    assert rt.create(live, env["bundle"]).returncode == 0
    try:
        pfile = env["tmp"] / "process.json"
        pfile.write_bytes(DAMAGES[damage](fuzzkit.dumps(env["base"]["process"]).encode()))
        e = rt.call("exec", "--process", str(pfile), live, detached_io=True)
        assert "Traceback" not in e.stderr, e.stderr
        if damage != "nan":
            assert e.returncode == 1 and check_result(e, log, "exec"), e
    finally:
        assert rt.delete(live, force=True).returncode == 0
    leaks = host_leaks(watch, cid, rt.root)
    assert not leaks, leaks
