"""--trace / PYRUNC_TRACE through the real command line, the `pyrunc trace`
reader, and the price of both switches when they are off (nothing)."""
import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.unit.test_faults_cli import clean_env, pyrunc, records

KEYS = {"time", "pid", "argv", "command", "id", "root", "bundle", "stdio", "extra_fds",
        "phases_ms", "total_ms", "exit", "end", "error", "faults"}


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "c1").mkdir(parents=True)
    (r / "c1" / "state.json").write_text(json.dumps({
        "id": "c1", "pid": 999999999, "bundle": "/the/bundle", "rootfs": "/the/bundle/rootfs",
        "created": "2024-01-01T00:00:00.000000000Z", "init_start_time": 1}))
    return str(r)


def test_one_complete_line_per_invocation(tmp_path, root):
    trace = tmp_path / "t.jsonl"
    with open(tmp_path / "err", "w") as err:
        r = subprocess.run([sys.executable, "-m", "pyrunc", "--root", root, "state", "c1"],
                           env=clean_env(PYRUNC_TRACE=str(trace)), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=err)
    assert r.returncode == 0
    pyrunc("--root", root, "--trace", str(trace), "delete", "nope")
    state, delete = records(trace)
    assert set(state) == KEYS and set(delete) == KEYS
    assert (state["command"], state["id"], state["root"], state["bundle"]) == (
        "state", "c1", root, "/the/bundle")
    assert state["argv"] == ["--root", root, "state", "c1"]
    assert state["stdio"] == {"stdin": "/dev/null", "stdout": "pipe",
                              "stderr": f"file:{tmp_path}/err"}
    assert (state["exit"], state["end"], state["error"], state["faults"]) == (0, "exit", None, [])
    assert state["total_ms"] > 0 and state["phases_ms"] == {}
    assert state["pid"] != delete["pid"]
    assert (delete["exit"], delete["error"]) == (1, "container nope does not exist")


def test_stdio_tty_and_socket_and_extra_fds(tmp_path, root):
    trace = tmp_path / "t.jsonl"
    master, slave = os.openpty()
    a, b = socket.socketpair()
    rd, wr = os.pipe()
    try:
        subprocess.run([sys.executable, "-m", "pyrunc", "--root", root, "list"],
                       env=clean_env(PYRUNC_TRACE=str(trace)), stdin=a.fileno(), stdout=slave,
                       stderr=subprocess.DEVNULL, pass_fds=(rd,), timeout=30)
    finally:
        for fd in (master, slave, rd, wr):
            os.close(fd)
        a.close()
        b.close()
    (rec,) = records(trace)
    assert rec["stdio"]["stdin"] == "socket"
    assert rec["stdio"]["stdout"].startswith("tty:/dev/pts/")
    assert rec["stdio"]["stderr"] == "/dev/null"
    assert rec["extra_fds"] == {str(rd): "pipe"}


def test_concurrent_writers_keep_lines_whole(tmp_path, root):
    trace = tmp_path / "t.jsonl"
    n = 24
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: pyrunc("--root", root, "--trace", str(trace), "state",
                                               "c1" if i % 2 else f"nope{i}").returncode,
                              range(n)))
    assert sorted(codes) == [0] * (n // 2) + [1] * (n // 2)
    lines = trace.read_text().splitlines()
    assert len(lines) == n
    recs = [json.loads(line) for line in lines]
    assert len({r["pid"] for r in recs}) == n


def test_usage_error_is_traced_too(tmp_path):
    trace = tmp_path / "t.jsonl"
    r = pyrunc("--trace", str(trace), "frobnicate")
    (rec,) = records(trace)
    assert (rec["command"], rec["exit"]) == (None, r.returncode)
    assert "No help topic for 'frobnicate'" in rec["error"]


# --- the reader -------------------------------------------------------------------------

def test_reader_table_json_and_filters(tmp_path, root):
    trace = tmp_path / "t.jsonl"
    for argv in (["state", "c1"], ["delete", "nope"], ["list"]):
        pyrunc("--root", root, "--trace", str(trace), *argv)
    table = pyrunc("trace", str(trace))
    assert table.returncode == 0, table.stderr
    head, *rows = table.stdout.splitlines()
    assert head.split()[:6] == ["TIME", "PID", "COMMAND", "ID", "EXIT", "MS"]
    assert [r.split()[2] for r in rows] == ["state", "delete", "list"]
    assert rows[1].endswith("container nope does not exist")
    js = pyrunc("trace", "--format", "json", str(trace))
    assert [r["command"] for r in json.loads(js.stdout)] == ["state", "delete", "list"]
    only = json.loads(pyrunc("trace", "-f", "json", "--id", "c1", str(trace)).stdout)
    assert [r["command"] for r in only] == ["state"]
    only = json.loads(pyrunc("trace", "-f", "json", "--command", "list", str(trace)).stdout)
    assert [r["command"] for r in only] == ["list"]


def test_reader_reports_lines_that_do_not_parse(tmp_path, root):
    trace = tmp_path / "t.jsonl"
    pyrunc("--root", root, "--trace", str(trace), "list")
    with open(trace, "a") as f:
        f.write('{"cut": \n["not", "a", "record"]\n')
    pyrunc("--root", root, "--trace", str(trace), "list")
    r = pyrunc("trace", "-f", "json", str(trace))
    assert r.returncode == 1
    assert len(json.loads(r.stdout)) == 2
    assert f"{trace}:2: not JSON" in r.stderr and f"{trace}:3: not a trace record" in r.stderr


def test_reader_bad_format_and_missing_file(tmp_path):
    assert "invalid format option" in pyrunc("trace", "-f", "yaml", "x").stderr
    r = pyrunc("trace", str(tmp_path / "none"))
    assert r.returncode == 1 and "no such file or directory" in r.stderr


# --- off means off ------------------------------------------------------------------------

PROBE = """
import json, sys
from pyrunc.cli import main
main(sys.argv[1:])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("pyrunc."))))
"""


@pytest.mark.parametrize("argv", [["state", "nope"], ["delete", "--force", "nope"],
                                  ["kill", "nope", "9"], ["list"]])
def test_switched_off_nothing_is_imported(tmp_path, argv):
    out = subprocess.run([sys.executable, "-c", PROBE, "--root", str(tmp_path)] + argv,
                         capture_output=True, text=True, env=clean_env()).stdout
    modules = json.loads(out.strip().splitlines()[-1])
    assert "pyrunc.cli" in modules
    assert not {"pyrunc.trace", "pyrunc.faults", "pyrunc.faultrules"} & set(modules)


def test_switched_on_they_are(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, "--root", str(tmp_path), "list"],
                         capture_output=True, text=True,
                         env=clean_env(PYRUNC_FAULTS="delay cmd=kill secs=1")).stdout
    modules = json.loads(out.strip().splitlines()[-1])
    assert {"pyrunc.trace", "pyrunc.faults"} <= set(modules)
