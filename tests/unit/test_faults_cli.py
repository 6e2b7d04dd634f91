"""Fault injection through the real command line (fresh interpreters, no root):
how each switch turns it on, what the caller sees, what the trace says."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ENV_SWITCHES = ("PYRUNC_TRACE", "PYRUNC_FAULTS", "PYRUNC_FAULTS_FROM_ANNOTATIONS",
                "PYRUNC_FAULTS_STATE")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ENV_SWITCHES}
    env.update(extra)
    return env


def pyrunc(*argv, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "pyrunc", *argv], capture_output=True,
                          text=True, env=env or clean_env(), stdin=subprocess.DEVNULL,
                          timeout=30, **kw)


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def root(tmp_path):
    """A runtime root holding one stopped container, c1, with a fault annotation."""
    r = tmp_path / "root"
    (r / "c1").mkdir(parents=True)
    (r / "c1" / "state.json").write_text(json.dumps({
        "id": "c1", "pid": 999999999, "bundle": "/b", "rootfs": "/b/rootfs",
        "created": "2024-01-01T00:00:00.000000000Z", "init_start_time": 1,
        "annotations": {"org.pyrunc.fault.a": "fail cmd=state code=5 msg=from-annotation"}}))
    return str(r)


def test_fail_is_reported_like_a_real_error(tmp_path, root):
    log, trace = tmp_path / "log.json", tmp_path / "t.jsonl"
    r = pyrunc("--root", root, "--log", str(log), "--log-format", "json", "--trace", str(trace),
               "list", env=clean_env(PYRUNC_FAULTS='fail cmd=list code=4 msg="no list today"'))
    assert (r.returncode, r.stdout, r.stderr) == (4, "", "pyrunc: no list today\n")
    last = json.loads(log.read_text().splitlines()[-1])
    assert (last["level"], last["msg"]) == ("error", "no list today")
    (rec,) = records(trace)
    assert (rec["exit"], rec["error"]) == (4, "no list today")
    assert rec["faults"] == [{"action": "fail", "rule": 'fail cmd=list code=4 msg=no list today',
                              "source": "env:1", "at": "command"}]


def test_rules_file_flag(tmp_path, root):
    rules = tmp_path / "rules"
    rules.write_text("# only list\nfail cmd=list msg=from-file\n")
    assert pyrunc("--root", root, "--faults", str(rules), "list").stderr == "pyrunc: from-file\n"
    assert pyrunc("--root", root, "--faults", str(rules), "state", "c1").returncode == 0


def test_env_may_name_a_rules_file(tmp_path, root):
    rules = tmp_path / "rules"
    rules.write_text("fail cmd=list code=3\n")
    assert pyrunc("--root", root, "list", env=clean_env(PYRUNC_FAULTS=str(rules))).returncode == 3


def test_bad_rule_fails_every_command_loudly(root):
    r = pyrunc("--root", root, "list", env=clean_env(PYRUNC_FAULTS="fial cmd=list"))
    assert r.returncode == 1
    assert "fault rule env:1: unknown action 'fial'" in r.stderr


def test_annotation_rules_need_the_callers_switch(tmp_path, root):
    trace = tmp_path / "t.jsonl"
    # bundle content alone (even with tracing on): ignored
    r = pyrunc("--root", root, "state", "c1", env=clean_env(PYRUNC_TRACE=str(trace)))
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "stopped"
    assert records(trace)[-1]["faults"] == []
    # the caller's switch, by env or flag
    r = pyrunc("--root", root, "state", "c1", env=clean_env(PYRUNC_FAULTS_FROM_ANNOTATIONS="1"))
    assert (r.returncode, r.stderr) == (5, "pyrunc: from-annotation\n")
    r = pyrunc("--root", root, "--faults-from-annotations", "state", "c1")
    assert r.returncode == 5
    r = pyrunc("--root", root, "state", "c1", env=clean_env(PYRUNC_FAULTS_FROM_ANNOTATIONS="0"))
    assert r.returncode == 0


def test_delay(root):
    t = time.monotonic()
    r = pyrunc("--root", root, "list", env=clean_env(PYRUNC_FAULTS="delay cmd=list secs=0.5"))
    assert r.returncode == 0 and time.monotonic() - t >= 0.5


def test_hang_until_killed_still_writes_its_trace_line(tmp_path, root):
    trace = tmp_path / "t.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "pyrunc", "--root", root, "--trace", str(trace),
                          "list"], env=clean_env(PYRUNC_FAULTS="hang cmd=list"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == -signal.SIGTERM
    finally:
        p.kill()
        p.wait()
    (rec,) = records(trace)
    assert (rec["end"], rec["exit"], rec["signal"]) == ("hang", None, "SIGTERM")
    assert rec["faults"][0]["action"] == "hang"


def test_crash_dies_of_sigkill_after_its_trace_line(tmp_path, root):
    trace = tmp_path / "t.jsonl"
    r = pyrunc("--root", root, "--trace", str(trace), "list",
               env=clean_env(PYRUNC_FAULTS="crash cmd=list"))
    assert r.returncode == -signal.SIGKILL
    (rec,) = records(trace)
    assert (rec["end"], rec["exit"], rec["faults"][0]["action"]) == ("crash", None, "crash")


def test_nth_across_invocations(tmp_path, root):
    env = clean_env(PYRUNC_FAULTS="fail cmd=list nth=2", PYRUNC_FAULTS_STATE=str(tmp_path / "n"))
    codes = [pyrunc("--root", root, "list", env=env).returncode for _ in range(3)]
    assert codes == [0, 1, 0]


def test_badlog_after_the_error_line(tmp_path, root):
    log = tmp_path / "log.json"
    r = pyrunc("--root", root, "--log", str(log), "--log-format", "json", "list",
               env=clean_env(PYRUNC_FAULTS="fail cmd=list msg=real; badlog cmd=list"))
    assert r.returncode == 1
    first, last = log.read_text().splitlines()
    assert json.loads(first)["msg"] == "real"
    with pytest.raises(ValueError):
        json.loads(last)


def test_a_bad_annotation_rule_fails_create_but_never_blocks_delete(tmp_path, root):
    state = os.path.join(root, "c1", "state.json")
    with open(state) as f:
        d = json.load(f)
    d["annotations"] = {"org.pyrunc.fault.a": "explode"}
    with open(state, "w") as f:
        json.dump(d, f)
    env = clean_env(PYRUNC_FAULTS_FROM_ANNOTATIONS="1")
    r = pyrunc("--root", root, "delete", "c1", env=env)
    assert r.returncode == 0, r.stderr
    assert "ignored: fault rule annotation:org.pyrunc.fault.a:1: unknown action" in r.stderr
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"annotations": d["annotations"]}))
    r = pyrunc("--root", root, "create", "--bundle", str(bundle), "c2", env=env)
    assert r.returncode == 1 and "unknown action 'explode'" in r.stderr
    assert not os.path.exists(os.path.join(root, "c2"))
