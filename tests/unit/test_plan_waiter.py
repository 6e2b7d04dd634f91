"""Where a create plan hands the created container to the sealed waiter."""
import pytest

from pyrunc.plan.build import build_plan
from pyrunc.plan.steps import AwaitStart, Exec, ExecAwaitingStart, Phase, RunHooks
from pyrunc.spec.config import Config
from pyrunc.spec.default import default_spec


def _config(hooks=None):
    spec = default_spec()
    spec["process"]["terminal"] = False
    spec["process"]["noNewPrivileges"] = True
    if hooks:
        spec["hooks"] = hooks
    return Config.from_dict(spec, "/b")


def _start(plan):
    return [type(s).__name__ for s in plan.phase(Phase.START)]


def test_without_start_hooks_the_waiter_execs_the_program():
    plan = build_plan(_config(), cid="c")
    assert _start(plan) == ["SetNoNewPrivs", "CloseFds", "ExecAwaitingStart"]
    last = plan.steps[-1]
    assert isinstance(last, ExecAwaitingStart) and last.args == tuple(default_spec()["process"]["args"])
    assert not any(isinstance(s, (AwaitStart, Exec)) for s in plan.steps)


@pytest.mark.parametrize("why", ["hooks", "faults"])
def test_the_python_init_stays_when_something_runs_after_start(why):
    hook = {"startContainer": [{"path": "/bin/true"}]}
    plan = build_plan(_config(hook if why == "hooks" else None), cid="c",
                      init_after_start=why == "faults")
    want = ["AwaitStart"] + (["RunHooks"] if why == "hooks" else []) + [
        "SetNoNewPrivs", "CloseFds", "Exec"]
    assert _start(plan) == want
    assert not any(isinstance(s, ExecAwaitingStart) for s in plan.steps)
    if why == "hooks":
        assert [s.stage for s in plan.steps if isinstance(s, RunHooks)] == ["startContainer"]


def test_seccomp_with_nnp_loads_right_before_the_waiter():
    spec = default_spec()
    spec["process"]["noNewPrivileges"] = True
    spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    plan = build_plan(Config.from_dict(spec, "/b"), cid="c")
    assert _start(plan)[-3:] == ["CloseFds", "LoadSeccomp", "ExecAwaitingStart"]


def test_run_execs_the_program_at_once():
    """`run` (start_now): nothing may come between its create and start, so no
    waiter and no exec fifo wait: the init execs the program itself."""
    plan = build_plan(_config(), cid="c", start_now=True)
    assert _start(plan) == ["SetNoNewPrivs", "CloseFds", "Exec"]
    assert not any(isinstance(s, (AwaitStart, ExecAwaitingStart)) for s in plan.steps)


@pytest.mark.parametrize("why", ["hooks", "faults"])
def test_run_keeps_the_waiting_init_when_something_runs_after_start(why):
    hook = {"startContainer": [{"path": "/bin/true"}]}
    plan = build_plan(_config(hook if why == "hooks" else None), cid="c", start_now=True,
                      init_after_start=why == "faults")
    assert _start(plan)[0] == "AwaitStart"
