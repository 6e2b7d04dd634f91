"""What real clients rely on (design.md §1): the container's stdio is create's
stdio, stray fds stay out, --preserve-fds passes exactly N, the pid file, the
--log JSON lines, the command-line forms containerd and podman use."""
import json
import os
import socket
import subprocess

import pytest

from tests.container.realkit import (RFC3339, SH_FDS, call_with_files, error_line,
                                     parse_fds, start_and_wait_exit, wait_status)


@pytest.fixture
def rt(pyrunc, make_runtime):
    return make_runtime(pyrunc, name="pyrunc")


def _cleanup(rt, cid):
    r = rt.delete(cid, force=True)
    assert r.returncode == 0, r.stderr


def test_stdio_is_creates_stdio(rt, bundle_factory, container_id, tmp_path):
    bundle = bundle_factory(args=["sh", "-c", 'read line; echo "got $line"; echo oops >&2; '
                                  'readlink /proc/$$/fd/1'])
    cid = container_id()
    (tmp_path / "in").write_text("hello\n")
    with open(tmp_path / "in") as i, open(tmp_path / "out", "w") as o, \
            open(tmp_path / "err", "w") as e:
        r = call_with_files(rt, "create", "--bundle", bundle, cid, stdin=i, stdout=o, stderr=e)
    assert r.returncode == 0, (tmp_path / "err").read_text()
    start_and_wait_exit(rt, cid)
    assert (tmp_path / "out").read_text() == f"got hello\n{tmp_path / 'out'}\n"
    assert (tmp_path / "err").read_text() == "oops\n"
    _cleanup(rt, cid)


def test_stray_fd_does_not_reach_container(rt, bundle_factory, container_id, tmp_path):
    """containerd's shim leaks its listen socket into `runc create` as fd 3."""
    bundle = bundle_factory(args=["sh", "-c", SH_FDS])
    cid = container_id()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "shim.sock"))
    listener.listen()
    extra = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)   # a host dir: CVE-2024-21626
    try:
        with open(tmp_path / "out", "w") as o:
            r = call_with_files(rt, "create", "--bundle", bundle, cid, stdout=o,
                                fds=[listener.fileno(), extra])
    finally:
        listener.close()
        os.close(extra)
    assert r.returncode == 0
    start_and_wait_exit(rt, cid)
    fds = parse_fds((tmp_path / "out").read_text())
    assert sorted(fds) == [0, 1, 2], fds
    _cleanup(rt, cid)


def test_preserve_fds_passes_exactly_n(rt, bundle_factory, container_id, tmp_path):
    bundle = bundle_factory(args=["sh", "-c", SH_FDS])
    cid = container_id()
    (tmp_path / "kept.txt").write_text("kept\n")
    r_pipe, w_pipe = os.pipe()
    kept = os.open(tmp_path / "kept.txt", os.O_RDONLY)
    stray = os.open("/dev/null", os.O_RDONLY)
    try:
        with open(tmp_path / "out", "w") as o:
            r = call_with_files(rt, "create", "--preserve-fds", "2", "--bundle", bundle, cid,
                                stdout=o, fds=[w_pipe, kept, stray])
    finally:
        for fd in (r_pipe, w_pipe, kept, stray):
            os.close(fd)
    assert r.returncode == 0
    start_and_wait_exit(rt, cid)
    fds = parse_fds((tmp_path / "out").read_text())
    assert sorted(fds) == [0, 1, 2, 3, 4], fds
    assert fds[3].startswith("pipe:") and fds[4] == str(tmp_path / "kept.txt")
    _cleanup(rt, cid)


def test_pid_file_relative_to_cwd_and_bundle_default(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    r = rt.call("create", "--pid-file", "rel.pid", cid, cwd=bundle.path, detached_io=True)
    assert r.returncode == 0, r.stderr
    st = rt.state_json(cid)
    assert st["bundle"] == bundle.path
    with open(os.path.join(bundle.path, "rel.pid"), "rb") as f:
        assert f.read() == str(st["pid"]).encode()
    assert not [n for n in os.listdir(bundle.path) if n.endswith(".tmp")]
    _cleanup(rt, cid)


def test_shim_command_lines(rt, bundle_factory, container_id, tmp_path):
    """The exact argv shape containerd's shim uses, flags with = and without."""
    bundle = bundle_factory(args=["sleep", "10"])
    cid = container_id()
    log = tmp_path / "log.json"
    head = ["--root", rt.root, "--log", str(log), "--log-format", "json"]
    r = rt.call("--log-format=json", f"--log={log}", "create", f"--bundle={bundle}",
                "--pid-file", tmp_path / "init.pid", "--no-new-keyring", cid, detached_io=True)
    assert r.returncode == 0, r.stderr
    for args in (["start", cid], ["kill", cid, "9"], ["kill", "--all", cid, "9"],
                 ["delete", cid], ["delete", "--force", cid]):
        p = subprocess.run([rt.binary, *head, *args], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, (args, p.stderr)
        if args[0] == "kill" and "--all" not in args:
            wait_status(rt, cid, "stopped")
    assert not log.exists() or log.read_text() == ""


def _log_lines(path):
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln]
    return [json.loads(ln) for ln in lines]


def test_log_json_lines(rt, container_id, tmp_path):
    log = tmp_path / "log.json"
    cid = container_id()
    for _ in range(2):
        r = rt.call("--log", log, "--log-format", "json", "start", cid)
        assert r.returncode == 1
        msg = error_line(r.stderr)
    entries = _log_lines(log)
    assert len(entries) == 2
    for e in entries:
        assert set(e) == {"level", "msg", "time"}
        assert e["level"] == "error" and e["msg"] == msg == f"container {cid} does not exist"
        assert RFC3339.match(e["time"]), e["time"]


def test_log_json_msg_with_newline_and_quotes(rt, bundle_factory, container_id, tmp_path):
    """A message that carries quotes, newlines and backslashes stays one valid line."""
    hook = {"path": "/bin/sh", "args": ["sh", "-c", 'printf "a\\nb \\"q\\" \\\\\\n" >&2; exit 2']}
    bundle = bundle_factory(args=["true"], config_overrides={"hooks": {"createRuntime": [hook]}})
    log = tmp_path / "log.json"
    r = rt.call("--log", log, "--log-format", "json", "create", "--bundle", bundle,
                container_id(), detached_io=True)
    assert r.returncode == 1
    msg = error_line(r.stderr)
    last = _log_lines(log)[-1]
    assert last["level"] == "error" and last["msg"] == msg
    assert "exit status 2" in msg and '"q"' in msg


def test_log_text_format(rt, container_id, tmp_path):
    log = tmp_path / "log.txt"
    cid = container_id()
    r = rt.call("--log", log, "kill", cid)
    assert r.returncode == 1
    line = log.read_text().splitlines()[-1]
    assert line.startswith('time="') and ' level=error msg="' in line
    assert f"container {cid} does not exist" in line


@pytest.mark.parametrize("argv,words", [
    (["create"], '"create" requires exactly 1 argument(s)'),
    (["kill"], '"kill" requires a minimum of 1 argument(s)'),
    (["create", "--bogus", "x"], "flag provided but not defined: -bogus"),
    (["--log-format=xml", "state", "x"], "invalid log-format: xml"),
    (["state", "a", "b"], '"state" requires exactly 1 argument(s)'),
])
def test_usage_errors(rt, argv, words):
    r = rt.call(*argv)
    assert r.returncode != 0
    assert words in error_line(r.stderr)


def test_version_and_help(rt):
    r = rt.call("--version")
    assert r.returncode == 0 and r.stdout.startswith("pyrunc version ")
    assert "spec: 1." in r.stdout
    r = rt.call("--help")
    assert r.returncode == 0 and "create" in r.stdout


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_waiting_init_holds_no_stray_fd(request, make_runtime, bundle_factory, container_id,
                                        runtime):
    """A pipe the client leaked into create must see EOF once create returned:
    the created container's init (alive until start) must not hold it."""
    rt_ = make_runtime(request.getfixturevalue(runtime), name=runtime)
    bundle = bundle_factory(args=["true"])
    cid = container_id()
    r_end, w_end = os.pipe()
    try:
        r = call_with_files(rt_, "create", "--bundle", bundle, cid, fds=[w_end],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w_end)
        w_end = -1
        assert r.returncode == 0
        os.set_blocking(r_end, False)
        try:
            data = os.read(r_end, 1)
        except BlockingIOError:
            data = None
        assert data == b"", f"{runtime}'s created container still holds the client's pipe"
    finally:
        os.close(r_end)
        if w_end >= 0:
            os.close(w_end)
        rt_.delete(cid, force=True)


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_dev_null_stdin_becomes_the_containers_own(runtime, pyrunc, runc, make_runtime,
                                                  bundle_factory, container_id, tmp_path):
    """Shims give the container the host's /dev/null read-only; runc swaps it for
    the container's own, read-write (docker/podman probes see `lrwx`)."""
    rt = make_runtime(pyrunc if runtime == "pyrunc" else runc, name=runtime)
    bundle = bundle_factory(args=["sh", "-c", "ls -l /proc/self/fd/0; echo x >/dev/stdin && echo ok"])
    cid = container_id()
    with open(os.devnull) as i, open(tmp_path / "out", "w") as o:
        r = call_with_files(rt, "create", "--bundle", bundle, cid, stdin=i, stdout=o,
                            stderr=subprocess.STDOUT)
    assert r.returncode == 0
    start_and_wait_exit(rt, cid)
    out = (tmp_path / "out").read_text()
    assert out.startswith("lrwx") and "-> /dev/null" in out and out.endswith("ok\n"), out
    _cleanup(rt, cid)
