"""Faults in-process: which rules an invocation keeps, step faults through
run_steps (the recording double shows what ran), nth counters, and the
end-of-command faults."""
import json
import os
import subprocess
import time

import pytest

from pyrunc.errors import PyruncError
from pyrunc.executor.base import Context, run_steps
from pyrunc.faultrules import parse_rules
from pyrunc.faults import Faults, InjectedFault
from pyrunc.plan.steps import AwaitStart, BringUpLoopback, SetHostname, SetNoNewPrivs
from pyrunc.state import proc_start_time
from tests.doubles import RecordingSys


def faults(text, command="create", cid="c1", annotations=None, state_dir=None, root=None):
    return Faults(parse_rules(text, "t"), command=command, cid=cid, root=root,
                  annotations=annotations or {}, state_dir=state_dir)


def armed(f):
    ctx = Context(sys=RecordingSys(), config=None)
    f.arm(ctx)
    return ctx


STEPS = [SetHostname("a"), BringUpLoopback(), SetHostname("b"), SetHostname("c")]


def unarmed_calls():
    ctx = Context(sys=RecordingSys(), config=None)
    run_steps(STEPS, ctx)
    return ctx.sys.calls


# --- which rules an invocation keeps --------------------------------------------------

def test_selection_by_command_id_and_annotation():
    f = faults("fail cmd=create; fail cmd=kill; fail id=c*; fail id=web; "
               "fail annotation=team; fail annotation=team=red; fail annotation=team=blue",
               annotations={"team": "red"})
    assert [r.text for r in f.rules] == ["fail cmd=create", "fail id=c*", "fail annotation=team",
                                         "fail annotation=team=red"]


def test_create_keeps_start_step_rules_for_its_init_exec_does_not():
    text = "fail cmd=start step=Exec; fail cmd=start; fail cmd=create step=Exec"
    assert [r.text for r in faults(text).rules] == ["fail cmd=start step=Exec",
                                                    "fail cmd=create step=Exec"]
    assert faults(text, command="exec").rules == []


def test_no_step_rules_leave_the_context_alone():
    ctx = armed(faults("fail cmd=create; delay secs=1"))
    assert "fault_at" not in ctx.extra


# --- at a step ----------------------------------------------------------------------------

def test_fail_stops_before_the_step_runs():
    ctx = armed(faults('fail step=BringUpLoopback msg="no lo"'))
    with pytest.raises(InjectedFault, match="^no lo$"):
        run_steps(STEPS, ctx)
    assert ctx.sys.calls == [("sethostname", ("a",))]


def test_nth_counts_matching_steps_in_the_process():
    ctx = armed(faults("fail step=SetHostname nth=2"))
    with pytest.raises(InjectedFault, match="injected fault: fail step=SetHostname nth=2"):
        run_steps(STEPS, ctx)
    assert ctx.sys.names() == ["sethostname", "link_up"]


def test_nth_plus_fires_on_later_ones_too():
    f = faults("fail step=SetHostname nth=2+")
    ctx = armed(f)
    for expected in (False, True, True):
        try:
            f.at_step(SetHostname("x"), ctx)
            fired = False
        except InjectedFault:
            fired = True
        assert fired is expected


def test_delay_then_the_same_work():
    ctx = armed(faults("delay step=BringUpLoopback secs=0.2"))
    t = time.monotonic()
    run_steps(STEPS, ctx)
    assert time.monotonic() - t >= 0.2
    assert ctx.sys.calls == unarmed_calls()


def test_steps_after_await_start_belong_to_start():
    f = faults("fail cmd=start step=SetNoNewPrivs msg=late; fail cmd=create step=SetHostname")
    ctx = armed(f)
    f.at_step(SetNoNewPrivs(), ctx)          # still create: the start rule waits
    f.at_step(AwaitStart(), ctx)
    with pytest.raises(InjectedFault, match="late"):
        f.at_step(SetNoNewPrivs(), ctx)
    f.at_step(SetHostname("x"), ctx)         # no longer create


@pytest.mark.parametrize("text", [
    "fail cmd=kill step=SetHostname",          # another command
    "fail id=other step=SetHostname",          # another container
    "fail annotation=team=red step=SetHostname",
    "crash step=PivotRoot",                    # a step the plan does not have
    "fail step=SetHostname nth=9",             # more calls than there are
    "badpid; badlog",                          # end-of-command faults: not at steps
])
def test_rules_that_match_nothing_change_nothing(text):
    f = faults(text, annotations={"team": "blue"})
    ctx = armed(f)
    run_steps(STEPS, ctx)
    assert ctx.sys.calls == unarmed_calls()
    assert f.fired == []


# --- at command start, nth across invocations ----------------------------------------------

def test_command_fail_has_its_exit_code():
    with pytest.raises(InjectedFault) as e:
        faults("fail cmd=create code=7 msg=boom").before_command()
    assert (e.value.exit_code, str(e.value)) == (7, "boom")
    assert isinstance(e.value, PyruncError)


def test_nth_counts_invocations_in_the_state_dir(tmp_path):
    fired = []
    for _ in range(4):
        f = faults("fail cmd=delete nth=2; delay cmd=delete nth=3+ secs=0", command="delete",
                   state_dir=str(tmp_path))
        try:
            f.before_command()
            fired.append([x["action"] for x in f.fired])
        except InjectedFault:
            fired.append(["fail"] + [x["action"] for x in f.fired][1:])
    assert fired == [[], ["fail"], ["delay"], ["delay"]]


def test_a_rule_that_does_not_select_the_call_does_not_count(tmp_path):
    faults("fail cmd=delete nth=1", command="kill", state_dir=str(tmp_path)).before_command()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InjectedFault):
        faults("fail cmd=delete nth=1", command="delete", state_dir=str(tmp_path)).before_command()


def test_annotation_rules_count_per_container(tmp_path):
    rules = parse_rules("fail cmd=kill nth=1", "annotation:org.pyrunc.fault.x")
    for cid in ("a", "b"):
        with pytest.raises(InjectedFault):
            Faults(rules, command="kill", cid=cid, state_dir=str(tmp_path)).before_command()
    Faults(rules, command="kill", cid="a", state_dir=str(tmp_path)).before_command()


# --- after the command ------------------------------------------------------------------------

def test_badpid_replaces_the_pid_file(tmp_path):
    pid_file = tmp_path / "pid"
    pid_file.write_text("4242")
    faults("badpid content='{pid}\\n'").after_command(0, {}, {"pid_file": str(pid_file)})
    assert pid_file.read_text() == "4242\n"
    faults("badpid").after_command(0, {}, {"pid_file": str(pid_file)})
    assert pid_file.read_text() == "not-a-pid"


def test_badpid_only_after_success(tmp_path):
    pid_file = tmp_path / "pid"
    pid_file.write_text("1")
    faults("badpid").after_command(1, {}, {"pid_file": str(pid_file)})
    assert pid_file.read_text() == "1"


def test_badlog_appends_a_line_that_does_not_parse(tmp_path):
    log = tmp_path / "log.json"
    log.write_text('{"level":"error","msg":"real","time":"x"}\n')
    f = faults("badlog")
    f.after_command(1, {"log": str(log)}, {})
    last = log.read_text().splitlines()[-1]
    with pytest.raises(ValueError):
        json.loads(last)
    assert f.fired[0]["action"] == "badlog"


def _fake_container(root, cid, pid):
    os.makedirs(os.path.join(root, cid))
    with open(os.path.join(root, cid, "state.json"), "w") as f:
        json.dump({"id": cid, "pid": pid, "bundle": "/b", "rootfs": "/b/rootfs",
                   "created": "2024-01-01T00:00:00Z", "init_start_time": proc_start_time(pid)}, f)


@pytest.mark.parametrize("command, when", [("create", "after"), ("kill", "before")])
def test_die_without_step_kills_the_init(tmp_path, command, when):
    init = subprocess.Popen(["sleep", "60"])
    try:
        _fake_container(str(tmp_path), "c1", init.pid)
        f = faults(f"die cmd={command}", command=command, root=str(tmp_path))
        if when == "before":
            f.before_command()
        else:
            f.before_command()
            assert init.poll() is None        # create's init does not exist yet at the start
            f.after_command(0, {}, {})
        assert init.wait(5) == -9
    finally:
        init.kill()
        init.wait()
