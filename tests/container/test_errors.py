"""A failed create (or run) explains itself in one line and leaves nothing.

Each case: a non-zero exit; exactly one `pyrunc: ...` line on stderr, the same
msg as the last line of --log FILE --log-format json (with an RFC 3339 time);
words clients map to exit codes; and no state dir, process, mount, cgroup or
fd left behind (the autouse leak check, plus an explicit process scan).
runc must fail on the same bundle too, so a case cannot pass by accident.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Callable

import pytest

from tests.container.helpers import deep_merge
from tests.container.realkit import RFC3339, error_line, runtime_processes, wait_for


@dataclass(frozen=True)
class Case:
    name: str
    words: tuple                       # substrings the message must contain
    overrides: dict = field(default_factory=dict)
    args: tuple = ("true",)
    edit: Callable | None = None       # edit(config) after overrides
    after: Callable | None = None      # after(bundle): break the bundle on disk
    files: dict = field(default_factory=dict)
    verbs: tuple = ("create", "run")
    flags: tuple = ()


def _truncate(bundle):
    path = os.path.join(bundle.path, "config.json")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def _remove_config(bundle):
    os.unlink(os.path.join(bundle.path, "config.json"))


def _point_root_nowhere(bundle):
    bundle.config["root"]["path"] = "no-such-rootfs"
    bundle.write_config()


def _drop_ns(*types):
    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] not in types]
    return edit


def _add_ns(*entries):
    def edit(c):
        c["linux"]["namespaces"] += list(entries)
    return edit


def _hook(stage, path="/bin/sh", args=("sh", "-c", "echo hook-said-no >&2; exit 3"), **kw):
    return {"hooks": {stage: [{"path": path, "args": list(args), **kw}]}}


CASES = [
    Case("truncated_config", ("config.json",), after=_truncate),
    Case("missing_config", ("config.json", "no such file or directory"), after=_remove_config),
    Case("missing_args", ("args",), edit=lambda c: c["process"].pop("args")),
    Case("unknown_namespace", ("bogus",), edit=_add_ns({"type": "bogus"})),
    Case("duplicate_namespace", ("duplicate", "pid"), edit=_add_ns({"type": "pid"})),
    Case("rootfs_missing", ("no such file or directory", "no-such-rootfs"),
         after=_point_root_nowhere),
    Case("executable_not_found", ("executable file not found in $PATH", "nosuchcmd"),
         args=("nosuchcmd",)),
    Case("absolute_executable_missing", ("no such file or directory",), args=("/nope/cmd",)),
    Case("not_executable", ("permission denied",), args=("/etc/passwd",)),
    Case("mount_without_destination", ("destination",),
         edit=lambda c: c["mounts"].append({"type": "tmpfs", "source": "tmpfs"})),
    Case("bind_source_missing", ("no such file or directory", "/no-such-src"),
         edit=lambda c: c["mounts"].append({"destination": "/x", "type": "bind",
                                            "source": "/no-such-src", "options": ["rbind"]})),
    Case("relative_cwd", ("cwd",), overrides={"process": {"cwd": "relative"}}),
    Case("hostname_without_uts", ("hostname", "UTS"), overrides={"hostname": "h"},
         edit=_drop_ns("uts")),
    # `run` in the foreground may make its own pty (runc does): create only
    Case("terminal_without_console_socket", ("console socket",),
         overrides={"process": {"terminal": True}}, verbs=("create",)),
    Case("prestart_hook_fails", ("exit status 3", "hook-said-no"),
         overrides=_hook("prestart")),
    Case("create_runtime_hook_fails", ("exit status 3", "hook-said-no"),
         overrides=_hook("createRuntime")),
    Case("create_container_hook_fails", ("exit status 3", "hook-said-no"),
         overrides=_hook("createContainer")),
    Case("hook_not_found", ("no such file or directory", "/no/such/hook"),
         overrides=_hook("createRuntime", path="/no/such/hook", args=())),
    Case("hook_timeout", ("timeout",),
         overrides=_hook("createRuntime", path="/bin/sleep", args=("sleep", "5"), timeout=1)),
    # fails after the init exists: it must be torn down
    Case("pid_file_dir_missing", ("pid file", "no such file or directory"),
         args=("sleep", "10"), flags=("--pid-file", "/nonexistent-pyrunc-test-dir/x.pid")),
    Case("error_inside_user_namespace", ("executable file not found in $PATH",),
         args=("nosuchcmd",), edit=_add_ns({"type": "user"}),
         overrides={"linux": {"uidMappings": [{"containerID": 0, "hostID": 0, "size": 65536}],
                              "gidMappings": [{"containerID": 0, "hostID": 0, "size": 65536}]}}),
]


@pytest.fixture
def rt(pyrunc, make_runtime, tmp_path):
    r = make_runtime(pyrunc, name="pyrunc")
    # not Runtime(log=True): that puts the log inside the state root
    r.log_path = str(tmp_path / "pyrunc-log.json")
    return r


@pytest.fixture
def ref(runc, make_runtime):
    return make_runtime(runc, name="runc")


def _bundle(case, bundle_factory, base_config):
    config = json.loads(json.dumps(base_config))
    config["process"]["terminal"] = False
    deep_merge(config, case.overrides)
    config["process"]["args"] = list(case.args)
    if case.edit:
        case.edit(config)
    b = bundle_factory(config=config, files=case.files)
    # make_bundle forces terminal=false; a case may want it back
    if config["process"].get("terminal"):
        b.config["process"]["terminal"] = True
        b.write_config()
    if case.after:
        case.after(b)
    return b


def _assert_failed_cleanly(rt, r, cid, words):
    assert r.returncode != 0, f"{rt.name} succeeded: {r.stdout}"
    msg = error_line(r.stderr)
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    entries = rt.log_entries()
    assert entries, "nothing in the --log file"
    last = entries[-1]
    assert (last["level"], last["msg"]) == ("error", msg)
    assert RFC3339.match(last["time"]), last["time"]
    assert not os.path.exists(os.path.join(rt.root, cid)), "state dir left behind"
    st = rt.state(cid)
    assert st.returncode == 1 and "does not exist" in st.stderr
    # orphans of a failed create would be reparented away from pytest: look
    # for anything still naming this runtime's root or the id
    assert wait_for(lambda: not runtime_processes(rt.root, cid), 2.0), \
        runtime_processes(rt.root, cid)


@pytest.mark.parametrize("case,verb", [(c, v) for c in CASES for v in c.verbs],
                         ids=lambda x: x if isinstance(x, str) else x.name)
def test_failure_leaves_nothing(case, verb, rt, ref, bundle_factory, base_config,
                                container_id):
    bundle = _bundle(case, bundle_factory, base_config)
    cid = container_id()
    if verb == "create":
        want = ref.create(cid, bundle, *case.flags)
        assert want.returncode != 0, f"runc accepted the {case.name} bundle"
        ref.delete(cid, force=True)
    r = getattr(rt, verb)(cid, bundle, *case.flags, detached_io=True)
    _assert_failed_cleanly(rt, r, cid, case.words)


def test_start_running_is_an_error(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    assert rt.run(cid, bundle, "-d").returncode == 0
    r = rt.start(cid)
    assert r.returncode == 1
    msg = error_line(r.stderr)
    assert msg == "cannot start an already running container"
    assert rt.log_entries()[-1]["msg"] == msg
    assert rt.delete(cid, force=True).returncode == 0


def test_failed_create_keeps_other_containers(rt, bundle_factory, container_id):
    """Cleaning up after a failure touches only the failed id."""
    good = bundle_factory(args=["sleep", "10"])
    bad = bundle_factory(args=["nosuchcmd"])
    keep = container_id()
    assert rt.create(keep, good).returncode == 0
    pid = rt.state_json(keep)["pid"]
    r = rt.create(container_id(), bad)
    assert r.returncode == 1
    r = rt.create(keep, bad)   # the id in use: must not tear down the existing one
    assert r.returncode == 1 and "already exists" in error_line(r.stderr)
    st = rt.state_json(keep)
    assert (st["status"], st["pid"]) == ("created", pid)
    assert rt.delete(keep).returncode == 0
