"""bench/: the report logic (no root), and one tiny real run of bench/run.py (root)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import stats
from bench.run import parse

REPO = Path(__file__).resolve().parents[2]


def test_summary_median_and_iqr():
    s = stats.summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n, s.median, s.q1, s.q3, s.iqr) == (5, 3.0, 2.0, 4.0, 2.0)
    assert stats.summarize([7.0]).iqr == 0
    assert stats.summarize([]) is None


def test_ratio_and_verdict_against_runc():
    samples = stats.Samples()
    for v in (10.0, 12.0, 14.0):
        samples.add("run", "runc", v)
        samples.add("run", "pyrunc", v * 0.5)
    assert stats.ratio(samples, "run") == pytest.approx(0.5)
    assert stats.verdict(0.5, 0.8) == "pass"
    assert stats.verdict(0.81, 0.8) == "FAIL"
    assert stats.verdict(0.5, None) == ""
    samples.add("state", "pyrunc", 3.0)              # no runc figure: no ratio
    assert stats.ratio(samples, "state") is None


def test_markdown_has_one_line_per_measured_row():
    samples = stats.Samples()
    samples.add("run", "runc", 30.0)
    samples.add("run", "pyrunc", 60.0)
    samples.add("init.rss", "runc", 9.5)
    samples.add("init.rss", "pyrunc", 9.0)
    rows = stats.time_rows([1, 50]) + stats.MEMORY_ROWS
    lines = stats.markdown(samples, rows, ["runc", "crun", "pyrunc"]).splitlines()
    assert len(lines) == 2 + 2
    run = next(line for line in lines if line.startswith("| `run`"))
    assert "30.0 ± 0.00" in run and "60.0 ± 0.00" in run and "| 2.00 |" in run
    assert run.rstrip(" |").endswith("FAIL")
    assert "| — |" in run                               # crun: no samples
    assert lines[-1].rstrip(" |").endswith("pass")      # 9.0 <= 9.5


def test_the_ratio_comes_with_a_paired_bootstrap_interval():
    samples = stats.Samples()
    for i in range(4):
        samples.add("shim.csd", "runc", 30.0 + i)
        samples.add("shim.csd", "pyrunc", 30.0 + i)
    assert stats.ratio_interval(samples, "shim.csd") is None        # under 5 pairs
    # each round's drift moves both runtimes alike: paired, the ratio stays 1
    for i in range(4, 24):
        samples.add("shim.csd", "runc", 30.0 + 3 * i)
        samples.add("shim.csd", "pyrunc", 30.0 + 3 * i)
    assert stats.ratio_interval(samples, "shim.csd") == (1.0, 1.0)
    noisy = stats.Samples()
    for i in range(24):
        noisy.add("run", "runc", 20.0 + (i % 5))
        noisy.add("run", "pyrunc", 16.0 + (i % 7))
    lo, hi = stats.ratio_interval(noisy, "run")
    assert lo < stats.ratio(noisy, "run") < hi and stats.ratio_interval(noisy, "run") == (lo, hi)
    line = next(ln for ln in stats.markdown(noisy, stats.time_rows([1]), ["runc", "pyrunc"])
                .splitlines() if ln.startswith("| `run`"))
    assert f"| {lo:.2f}-{hi:.2f} | ≤ 0.8 |" in line


def test_the_cgroup_moving_rows_are_split_by_the_runtime_just_before():
    samples = stats.Samples()
    for prev, v in (("crun", 19.0), ("pyrunc", 25.0), ("pyrunc", 23.0), ("runc", 22.0)):
        samples.add("shim.create", "runc", v, prev)
    samples.add("shim.start", "runc", 4.0, "crun")      # not such a row: not split
    samples.add("shim.create", "pyrunc", 18.0)          # nobody before it: not split
    assert samples.data["shim.create"]["runc"] == [19.0, 25.0, 23.0, 22.0]
    assert set(samples.after) == {"shim.create"}
    lines = stats.after_markdown(samples, ["runc", "crun", "pyrunc"]).splitlines()
    assert lines[0] == "| row | runtime | after runc | after crun | after pyrunc |"
    assert lines[2] == "| shim: `create` | runc | 22.0 (n=1) | 19.0 (n=1) | 24.0 (n=2) |"
    assert len(lines) == 3
    assert stats.after_json(samples) == {"shim.create": {"runc": {"crun": 19.0, "pyrunc": 24.0,
                                                                  "runc": 22.0}}}
    assert stats.after_markdown(stats.Samples(), ["runc"]) == ""


def test_targets_follow_the_issue():
    rows = {r.key: r.target for r in stats.time_rows([1, 10, 50]) + stats.MEMORY_ROWS}
    assert rows["run"] == 0.8
    assert rows["shim.csd"] == rows["exec"] == rows["conc50.wall"] == 1.0
    assert rows["state"] == rows["kill"] == 2.0
    assert rows["conc10.wall"] is None and "conc1.per" not in rows
    assert rows["init.rss"] == 1.0


def test_cli_rejects_unknown_groups_and_bad_counts():
    a = parse(["--only", "run,state", "--concurrency", "50,1,10"])
    assert a.groups == {"run", "state"} and a.conc == [1, 10, 50]
    for bad in (["--only", "nope"], ["--concurrency", "x"], ["--samples", "0"]):
        with pytest.raises(SystemExit):
            parse(bad)


def _missing():
    if os.geteuid() != 0:
        return "needs root"
    for exe in ("runc", "busybox"):
        if shutil.which(exe) is None:
            return f"needs {exe}"
    if not (REPO / ".venv" / "bin" / "pyrunc").exists():
        return "needs .venv/bin/pyrunc (./install.sh)"
    return None


@pytest.mark.root
@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_bench_runs_one_sample_and_leaves_nothing(tmp_path):
    out = tmp_path / "bench.json"
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--samples", "1", "--warmup", "0",
         "--rss-samples", "1", "--concurrency", "1,2", "--json", str(out),
         "--tmpdir", str(work)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr + done.stdout
    assert "| `run` true" in done.stdout and "pyrunc/runc" in done.stdout
    report = json.loads(out.read_text())
    # exit 1 means some runtime failed a group, and the report must name it
    assert (done.returncode == 1) == bool(report["failures"]), report["failures"]
    assert "LEAK" not in " ".join(report["notes"])
    assert list(work.iterdir()) == []                 # temporary directory removed
    # each shim create is filed under the runtime whose command ran just before it
    assert set(report["after"]["shim.create"]) >= {"runc", "pyrunc"}
    assert "ran just before" in done.stdout
    rows = {r["key"]: r for r in report["rows"]}
    groups = {"run": "run", "shim.csd": "shim", "init.rss": "shim", "rss.create": "shim",
              "exec": "exec", "state": "state", "kill": "kill", "conc2.wall": "concurrent"}
    assert not [f for f in report["failures"] if f.endswith("/runc")], report["failures"]
    for key, group in groups.items():
        for rt in ("runc", "pyrunc"):
            if f"{group}/{rt}" in report["failures"]:
                continue          # pyrunc broke here: the report says so, no figure
            assert rows[key]["runtimes"][rt]["n"] == 1, (key, rt)
            assert rows[key]["runtimes"][rt]["median"] > 0, (key, rt)


def test_every_runtime_follows_every_other_equally_often():
    """The sample orders cycle through the permutations: over six samples
    each runtime comes right after each other one twice and is first twice."""
    from collections import Counter
    from bench.scenarios import sample_order
    runtimes = ["runc", "crun", "pyrunc"]
    orders = [sample_order(runtimes, i) for i in range(6)]
    follows = Counter((a, b) for o in orders for a, b in zip(o, o[1:]))
    assert set(follows.values()) == {2} and len(follows) == 6
    assert Counter(o[0] for o in orders) == Counter({r: 2 for r in runtimes})
    assert [sample_order(["runc", "pyrunc"], i) for i in range(3)] == \
        [["runc", "pyrunc"], ["pyrunc", "runc"], ["runc", "pyrunc"]]


def test_settle_is_quiet_time_outside_the_measurement():
    """--settle MS: each runtime's turn starts after MS of quiet, not timed."""
    import time
    from types import SimpleNamespace
    from bench.scenarios import Bench
    assert parse(["--settle", "50"]).settle == 50.0 and parse([]).settle == 0.0
    bench = Bench(None, None, None, [], "/nonexistent", "x", [1], settle=0.02)
    calls = []
    t0 = time.monotonic()
    bench.guarded("run", SimpleNamespace(name="pyrunc"),
                  lambda rt: calls.append(time.monotonic() - t0))
    assert len(calls) == 1 and calls[0] >= 0.02


def test_repeat_records_only_the_last_run_of_a_turn():
    """--repeat N: the recorded run follows the same runtime's own commands."""
    from types import SimpleNamespace
    from bench.scenarios import Bench
    assert parse(["--repeat", "2"]).repeat == 2 and parse([]).repeat == 1
    with pytest.raises(SystemExit):
        parse(["--repeat", "0"])
    bench = Bench(None, None, None, [], "/nonexistent", "x", [1], repeat=3)
    rt = SimpleNamespace(name="runc")
    runs = []

    def measure(r):
        runs.append(len(runs))
        bench.record("state", r, float(len(runs)))
    bench.guarded("state", rt, measure)
    assert runs == [0, 1, 2] and bench.samples.data["state"]["runc"] == [3.0]
    runs.clear()
    bench.guarded("kill", rt, measure)                  # its container is gone after one
    assert runs == [0] and bench.samples.data["state"]["runc"] == [3.0, 1.0]
    assert bench.recording
