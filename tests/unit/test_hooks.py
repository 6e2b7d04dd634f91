import json

import pytest

from pyrunc.errors import HookError
from pyrunc.executor.hooks import run_hooks
from pyrunc.spec.config import Hook

STATE = {"ociVersion": "1.2.0", "id": "c", "status": "creating", "pid": 42, "bundle": "/b"}


def test_hook_gets_state_args_and_env(tmp_path):
    out = tmp_path / "out"
    hook = Hook("/bin/sh", ("sh", "-c", f'cat > {out}; echo >> {out}; echo "$0 $1 $FOO" >> {out}', "arg0x",
                            "one"), ("FOO=bar",))
    run_hooks("createRuntime", (hook,), STATE)
    state_line, extra = out.read_text().split("\n", 1)
    assert json.loads(state_line) == STATE
    assert extra.strip() == "arg0x one bar"


def test_failing_hook_stops_the_rest(tmp_path):
    marker = tmp_path / "second-ran"
    hooks = (Hook("/bin/sh", ("sh", "-c", "echo oops >&2; exit 3")),
             Hook("/bin/sh", ("sh", "-c", f"touch {marker}")))
    with pytest.raises(HookError, match=r"prestart hook #0: exit status 3.*stderr: oops"):
        run_hooks("prestart", hooks, STATE)
    assert not marker.exists()


def test_hook_timeout():
    with pytest.raises(HookError, match="timeout after 1s"):
        run_hooks("poststart", (Hook("/bin/sleep", ("sleep", "5"), (), 1),), STATE)


def test_missing_hook_binary():
    with pytest.raises(HookError, match="no such file or directory"):
        run_hooks("createRuntime", (Hook("/nonexistent/hook"),), STATE)
