"""The pieces of a trace record: phases from launch's marks, fd descriptions,
and an instrumented run in-process (the log wrapper is undone afterwards)."""
import json
import os

from pyrunc import trace
from pyrunc.log import log


def test_phases_from_the_sync_marks():
    t0 = 100.0
    marks = [("launch", 100.010), ("cgroups", 100.011), ("go", 100.015), ("pid", 100.020),
             ("rootfs-done", 100.030), ("hooks-done", 100.034), ("ready", 100.040),
             ("exec-done", 100.041)]
    assert trace.phases(marks, t0) == {"parse": 10.0, "cgroups": 4.0, "namespaces": 5.0,
                                       "mounts": 10.0, "hooks": 4.0, "container": 6.0,
                                       "exec": 1.0}


def test_phases_when_rootfs_done_overtakes_the_pid():
    # the init's rootfs-done may arrive before the intermediate's pid message
    marks = [("go", 1.0), ("rootfs-done", 1.004), ("pid", 1.005), ("hooks-done", 1.006)]
    ph = trace.phases(marks, 0.9)
    assert ph["mounts"] == 0.0 and ph["hooks"] == 1.0 and "parse" not in ph


def test_phases_of_a_failed_create_stop_where_it_failed():
    assert set(trace.phases([("launch", 1.0), ("cgroups", 1.1), ("go", 1.2), ("error", 1.3)],
                            0.5)) == {"parse", "cgroups"}


def test_describe_fd(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    with open(f) as fh, open(os.devnull) as null:
        assert trace.describe_fd(fh.fileno()) == f"file:{f}"
        assert trace.describe_fd(null.fileno()) == "/dev/null"
    rd, wr = os.pipe()
    try:
        assert trace.describe_fd(rd) == "pipe"
    finally:
        os.close(rd)
        os.close(wr)
    assert trace.describe_fd(rd) == "closed"
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert trace.describe_fd(fd) == f"dir:{tmp_path}"
    finally:
        os.close(fd)


def test_instrumented_run_in_process(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    monkeypatch.delenv("PYRUNC_FAULTS", raising=False)
    seen = []

    def run(argv):
        trace.mark("launch")
        log.error("it broke\nbadly")
        seen.append(trace._current is not None)
        return 3
    before = log.__dict__.get("error")
    code = trace.instrumented_main(run, ["--root", str(tmp_path), "--trace", str(path),
                                         "kill", "c9", "KILL"])
    assert code == 3 and seen == [True]
    (rec,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert (rec["command"], rec["id"], rec["exit"], rec["error"]) == ("kill", "c9", 3,
                                                                       "it broke badly")
    assert "parse" in rec["phases_ms"]
    # nothing of the run stays behind in this process
    assert trace._current is None and log.__dict__.get("error") is before
    trace.mark("launch")   # no current invocation: a no-op
