"""Running OCI hooks: the state JSON on stdin, args/env as given, an optional timeout."""
from pyrunc import fastjson
from pyrunc.errors import HookError
from pyrunc.executor.base import handles
from pyrunc.plan.steps import RunHooks


def run_hook(index, stage, hook, state_json):
    import subprocess
    # like runc (Go's exec.Cmd with a nil Env): a hook without env inherits ours
    env = dict(e.split("=", 1) for e in hook.env if "=" in e) if hook.env else None
    args = list(hook.args) or [hook.path]
    try:
        p = subprocess.run(args, executable=hook.path, input=state_json, env=env,
                           capture_output=True, timeout=hook.timeout, close_fds=True)
    except subprocess.TimeoutExpired:
        raise HookError(f"error running {stage} hook #{index}: timeout after {hook.timeout}s "
                        f"({hook.path})") from None
    except OSError as e:
        from pyrunc.errors import oserror_text
        raise HookError(f"error running {stage} hook #{index}: fork/exec {hook.path}: "
                        f"{oserror_text(e)}") from None
    if p.returncode != 0:
        how = (f"exit status {p.returncode}" if p.returncode > 0
               else f"signal: {-p.returncode}")
        out = p.stdout.decode(errors="replace").strip()
        err = p.stderr.decode(errors="replace").strip()
        raise HookError(f"error running {stage} hook #{index}: {how}, stdout: {out}, "
                        f"stderr: {err}")


def run_hooks(stage, hooks, state):
    """Run hooks in order; the first failure stops the rest (HookError)."""
    data = state if isinstance(state, bytes) else fastjson.dumps(state).encode()
    for i, hook in enumerate(hooks):
        run_hook(i, stage, hook, data)


@handles(RunHooks)
def run_hooks_step(step, ctx):
    run_hooks(step.stage, step.hooks, ctx.state_json)
