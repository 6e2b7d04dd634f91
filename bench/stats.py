"""Rows, samples, summaries (median, IQR) and the Markdown/JSON report.

Pure: no processes, no I/O besides what the caller does with the strings.
"""
import random
import statistics
from dataclasses import dataclass, field

RUNTIMES = ("runc", "crun", "pyrunc")
BASELINE = "runc"


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str                 # "ms" or "MiB"
    target: float = None      # pass when pyrunc/runc ratio <= target


def time_rows(concurrency):
    rows = [
        Row("run", "`run` true (create+start+wait+delete)", "ms", 0.8),
        Row("shim.create", "shim: `create`", "ms"),
        Row("shim.start", "shim: `start`", "ms"),
        Row("shim.wait", "shim: wait for init exit", "ms"),
        Row("shim.delete", "shim: `delete`", "ms"),
        Row("shim.csd", "shim: create+start+delete", "ms", 1.0),
        Row("shim.total", "shim: create+start+wait+delete", "ms"),
        Row("exec", "`exec` true into a running container", "ms", 1.0),
        Row("state", "`state`", "ms", 2.0),
        Row("kill", "`kill` KILL", "ms", 2.0),
    ]
    for n in concurrency:
        rows.append(Row(f"conc{n}.wall", f"{n} × `run` concurrently: wall", "ms",
                        1.0 if n == 50 else None))
        if n > 1:
            rows.append(Row(f"conc{n}.per", f"{n} × `run` concurrently: per container", "ms"))
    return rows


MEMORY_ROWS = [
    Row("rss.run", "peak RSS `run`", "MiB"),
    Row("rss.create", "peak RSS `create`", "MiB"),
    Row("rss.start", "peak RSS `start`", "MiB"),
    Row("rss.delete", "peak RSS `delete`", "MiB"),
    Row("rss.exec", "peak RSS `exec`", "MiB"),
    Row("rss.state", "peak RSS `state`", "MiB"),
    Row("rss.kill", "peak RSS `kill`", "MiB"),
    Row("init.rss", "waiting init (created): VmRSS", "MiB", 1.0),
    Row("init.anon", "waiting init (created): RssAnon", "MiB", 1.0),
    Row("init.pss", "waiting init (created): Pss", "MiB"),
]


@dataclass
class Summary:
    n: int
    median: float
    q1: float
    q3: float
    lo: float
    hi: float

    @property
    def iqr(self):
        return self.q3 - self.q1


def summarize(values):
    if not values:
        return None
    vals = sorted(values)
    if len(vals) == 1:
        q1 = q3 = vals[0]
    else:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    return Summary(len(vals), statistics.median(vals), q1, q3, vals[0], vals[-1])


@dataclass
class Samples:
    """samples[row key][runtime] -> values in the row's unit; after[row key]
    [runtime][the runtime whose command ran just before] -> the same values,
    for the rows that depend on it (AFTER_ROWS)."""
    data: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)   # (group, runtime) -> message
    after: dict = field(default_factory=dict)

    def add(self, key, runtime, value, previous=None):
        self.data.setdefault(key, {}).setdefault(runtime, []).append(value)
        if key in AFTER_ROWS and previous is not None:
            self.after.setdefault(key, {}).setdefault(runtime, {}) \
                .setdefault(previous, []).append(value)

    def summary(self, key, runtime):
        return summarize(self.data.get(key, {}).get(runtime, []))


# The rows whose commands move a process into a cgroup (runc's and crun's
# create and exec): how long that takes depends on whether the command just
# before did the same (bench/README.md), so they are also split by it.
AFTER_ROWS = {"shim.create": "shim: `create`", "exec": "`exec` true"}


def ratio(samples, key, runtime="pyrunc"):
    a, b = samples.summary(key, runtime), samples.summary(key, BASELINE)
    if a is None or b is None or b.median == 0:
        return None
    return a.median / b.median


def ratio_interval(samples, key, runtime="pyrunc", level=0.95, rounds=2000):
    """A bootstrap interval of ratio(): the samples of one index ran in the
    same round, so indices are drawn with replacement and both runtimes'
    medians taken over the same draw.  None under 5 pairs.  The seed is
    fixed: the same samples give the same interval."""
    a = samples.data.get(key, {}).get(runtime, [])
    b = samples.data.get(key, {}).get(BASELINE, [])
    n = min(len(a), len(b))
    if n < 5:
        return None
    rng = random.Random(0)
    med = statistics.median
    ratios = []
    for _ in range(rounds):
        idx = [rng.randrange(n) for _ in range(n)]
        base = med([b[i] for i in idx])
        if base:
            ratios.append(med([a[i] for i in idx]) / base)
    ratios.sort()
    lo = int((1 - level) / 2 * len(ratios))
    return ratios[lo], ratios[len(ratios) - 1 - lo]


def _num(v, unit):
    if unit == "MiB" or abs(v) < 10:
        return f"{v:.2f}"
    return f"{v:.1f}"


def cell(summary, unit):
    if summary is None:
        return "—"
    return f"{_num(summary.median, unit)} ± {_num(summary.iqr, unit)}"


def verdict(r, target):
    if target is None or r is None:
        return ""
    return "pass" if r <= target else "FAIL"


def markdown(samples, rows, runtimes):
    """The results table: median ± IQR per runtime, pyrunc/runc, target, pass/fail."""
    head = ["row", "unit"] + [f"{rt}" for rt in runtimes] + ["pyrunc/runc", "95% interval",
                                                            "target", "pass?"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---", "---"] + ["--:"] * len(runtimes)
                            + ["--:", "--:", "--:", "---"]) + "|"]
    for row in rows:
        if row.key not in samples.data:
            continue
        r = ratio(samples, row.key)
        # only where there is a target: the interval says how sure pass/FAIL is
        span = ratio_interval(samples, row.key) if row.target is not None else None
        cells = [row.label, row.unit]
        cells += [cell(samples.summary(row.key, rt), row.unit) for rt in runtimes]
        cells += ["—" if r is None else f"{r:.2f}",
                  "" if span is None else f"{span[0]:.2f}-{span[1]:.2f}",
                  "" if row.target is None else f"≤ {row.target:g}",
                  verdict(r, row.target)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def after_markdown(samples, runtimes):
    """Medians of AFTER_ROWS by the runtime whose command ran just before."""
    if not samples.after:
        return ""
    lines = ["| row | runtime | " + " | ".join(f"after {p}" for p in runtimes) + " |",
             "|---|---|" + "--:|" * len(runtimes)]
    for key, label in AFTER_ROWS.items():
        for rt in runtimes:
            by = samples.after.get(key, {}).get(rt)
            if not by:
                continue
            cells = []
            for prev in runtimes:
                s = summarize(by.get(prev, []))
                cells.append("—" if s is None else f"{_num(s.median, 'ms')} (n={s.n})")
            lines.append(f"| {label} | {rt} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def after_json(samples):
    return {key: {rt: {prev: summarize(v).median for prev, v in by.items()}
                  for rt, by in per.items()}
            for key, per in samples.after.items()}


def to_json(samples, rows, runtimes):
    out = []
    for row in rows:
        if row.key not in samples.data:
            continue
        per = {}
        for rt in runtimes:
            s = samples.summary(row.key, rt)
            if s is not None:
                per[rt] = {"median": s.median, "q1": s.q1, "q3": s.q3, "iqr": s.iqr,
                           "min": s.lo, "max": s.hi, "n": s.n,
                           "samples": samples.data[row.key][rt]}
        r = ratio(samples, row.key)
        out.append({"key": row.key, "label": row.label, "unit": row.unit,
                    "target": row.target, "ratio": r,
                    "ratio_interval": ratio_interval(samples, row.key) if row.target else None,
                    "crun_ratio": ratio(samples, row.key, "crun"),
                    "pass": None if row.target is None or r is None else r <= row.target,
                    "runtimes": per})
    return out
