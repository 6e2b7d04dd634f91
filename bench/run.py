#!/usr/bin/env python3
"""pyrunc vs runc (and crun): `sudo .venv/bin/python bench/run.py [options]`.

Runs every row for every runtime on the same busybox bundle, interleaved per
sample, then prints a Markdown table of medians ± IQR with pyrunc/runc ratios
and the issue's targets.  Needs root.  Leaves nothing behind: containers are
deleted even on Ctrl-C, the state roots and the temporary directory removed.
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

if __package__ in (None, ""):      # run as a script: make `bench` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import machine, stats  # noqa: E402
from bench.bundle import make_bundles  # noqa: E402
from bench.procs import (Spawner, become_subreaper, build_rsswrap, children_of, reap_all,
                         reap_strays)  # noqa: E402
from bench.runtimes import Namespaces, Runtime, find, setup_crun, version  # noqa: E402
from bench.scenarios import GROUPS, Bench  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CGROUP_ROOT = "/sys/fs/cgroup"


def parse(argv):
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=24,
                   help="samples per row (default 24: each order of three runtimes four times)")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded samples first (default 1)")
    p.add_argument("--only", default=",".join(GROUPS),
                   help=f"comma-separated groups to run, of: {','.join(GROUPS)} "
                        "(the waiting init's memory comes with shim)")
    p.add_argument("--concurrency", default="1,10,50",
                   help="container counts for the concurrent rows (default 1,10,50)")
    p.add_argument("--rss-samples", type=int, default=5,
                   help="peak-RSS passes (commands under bench/rsswrap, untimed; default 5)")
    p.add_argument("--markdown", metavar="FILE", help="also write the report here")
    p.add_argument("--json", metavar="FILE", help="write all samples and summaries as JSON")
    p.add_argument("--pyrunc", default=os.path.join(REPO, ".venv", "bin", "pyrunc"))
    p.add_argument("--runc", default=None, help="runc binary (default: from PATH)")
    p.add_argument("--crun", default=None, help="crun binary (default: from PATH)")
    p.add_argument("--no-crun", action="store_true", help="leave crun out")
    p.add_argument("--tmpdir", default=None, help="where the temporary directory goes")
    p.add_argument("--settle", type=float, default=0.0, metavar="MS",
                   help="quiet time before each runtime's turn, in ms (default 0: back to back)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run each measurement N times in a runtime's turn and record the "
                        "last, which follows that runtime's own commands (default 1)")
    a = p.parse_args(argv)
    a.groups = {g.strip() for g in a.only.split(",") if g.strip()}
    unknown = a.groups - set(GROUPS)
    if unknown:
        p.error(f"--only: unknown group(s) {','.join(sorted(unknown))}; known: {','.join(GROUPS)}")
    try:
        a.conc = sorted({int(n) for n in a.concurrency.split(",") if n.strip()})
    except ValueError:
        p.error("--concurrency: comma-separated positive integers")
    if any(n < 1 for n in a.conc) or a.samples < 1 or a.warmup < 0 or a.rss_samples < 0 \
            or a.repeat < 1:
        p.error("--samples, --repeat and --concurrency need positive numbers")
    return a


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def _sweep_cgroups(prefix):
    """Remove (and name) cgroup directories left by our containers."""
    found = []
    for top, dirs, _ in os.walk(CGROUP_ROOT):
        if top.count("/") - CGROUP_ROOT.count("/") > 5:
            dirs[:] = []
            continue
        for d in dirs:
            if d.startswith(prefix + "-"):
                found.append(os.path.join(top, d))
    for path in sorted(found, key=len, reverse=True):
        try:
            os.rmdir(path)
        except OSError:
            pass
    return found


def _stray_processes():
    """Kill (by pid) and name any process still parented to the bench."""
    reap_all()
    pids = children_of(os.getpid())
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reap_all()
    return pids


def report(bench, runtimes, args, info, notes, elapsed):
    names = [rt.name for rt in runtimes]
    rows = stats.time_rows(args.conc) + stats.MEMORY_ROWS
    out = ["### Machine", "", machine.markdown(info), "### Results", "",
           f"Median ± IQR of {args.samples} samples per cell (after {args.warmup} warm-up), "
           "runtimes interleaved, in every order in turn"
           + (f", {args.settle:g} ms of quiet before each runtime's turn" if args.settle else
              ", back to back")
           + (f", each measurement run {args.repeat} times in a turn and the last recorded"
              " (kill once)" if args.repeat > 1 else "")
           + "; ratio = pyrunc median / runc median.",
           "", stats.markdown(bench.samples, rows, names)]
    after = stats.after_markdown(bench.samples, names)
    if after:
        out += ["Medians (ms) by the runtime whose command ran just before:", "", after]
    if notes:
        out += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    out.append(f"Total bench time: {elapsed:.0f} s.\n")
    text = "\n".join(out)
    payload = {"machine": info, "samples": args.samples, "warmup": args.warmup,
               "groups": sorted(args.groups), "concurrency": args.conc,
               "runtimes": {rt.name: {"exe": rt.exe, "how": rt.how} for rt in runtimes},
               "in_own_cgroup": bench.in_cgroup, "notes": notes,
               "failures": {f"{g}/{rt}": m for (g, rt), m in bench.samples.failures.items()},
               "rows": stats.to_json(bench.samples, rows, names),
               "after": stats.after_json(bench.samples), "elapsed_s": elapsed}
    return text, payload


def _fairness_notes(bench):
    notes = []
    joined = bench.in_cgroup
    if joined and len(set(joined.values())) > 1:
        have = [rt for rt, v in joined.items() if v]
        lack = [rt for rt, v in joined.items() if not v]
        notes.append(f"not like for like: the waiting init of {', '.join(have)} was in a "
                     f"cgroup named after the container, that of {', '.join(lack)} was not "
                     "(it skipped cgroup setup the others paid for)")
    return notes


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("bench/run.py: needs root (containers with namespaces and cgroups)",
              file=sys.stderr)
        return 2
    runc, pyrunc = find("runc", args.runc), find("pyrunc", args.pyrunc)
    if not runc or not pyrunc:
        print(f"bench/run.py: runc ({runc}) and pyrunc ({pyrunc}) are both needed",
              file=sys.stderr)
        return 2
    crun = None if args.no_crun else find("crun", args.crun)

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="pyrunc-bench-", dir=args.tmpdir)
    prefix = f"pb{os.getpid()}"
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _interrupt)
    become_subreaper()
    os.makedirs(os.path.join(tmp, "err"))
    spawner = Spawner(os.path.join(tmp, "err"))
    namespaces = Namespaces()
    candidates = [Runtime("runc", runc, os.path.join(tmp, "root-runc"))]
    if crun:
        candidates.append(Runtime("crun", crun, os.path.join(tmp, "root-crun")))
    candidates.append(Runtime("pyrunc", pyrunc, os.path.join(tmp, "root-pyrunc")))
    for rt in candidates:
        os.makedirs(rt.root)
    versions = {f"{rt.name}": version(rt.exe) for rt in candidates}
    notes, bench, interrupted = [], None, False
    try:
        bundles = make_bundles(tmp, runc)
        bench = Bench(spawner, namespaces, bundles, list(candidates), tmp, prefix, args.conc,
                  args.settle / 1000, args.repeat)
        if crun:
            rt = candidates[1]

            def probe(r):
                cid = bench.new_id(r)
                bench.cmd(r, "run", "--bundle", bundles.true, cid)
                bench.live[r.name].discard(cid)
            usable, note = setup_crun(rt, probe, namespaces)
            notes.append(note)
            if usable is None:
                bench.runtimes.remove(rt)
        real = bench.samples
        # warm-up samples go to a throwaway Samples that shares the failures
        bench.samples = stats.Samples(failures=real.failures)
        for i in range(args.warmup):
            bench.sample(i, args.groups)
        bench.samples = real
        bench.rsswrap = build_rsswrap(tmp) if args.rss_samples else None
        if args.rss_samples and bench.rsswrap is None:
            notes.append("peak RSS rows skipped: no C compiler for bench/rsswrap.c")
        tty = sys.stderr.isatty()
        cr, end = ("\r", "") if tty else ("", "\n")
        for i in range(args.samples):
            t = time.monotonic() - started
            print(f"{cr}bench: sample {i + 1}/{args.samples} ({t:.0f} s)", end=end,
                  file=sys.stderr, flush=True)
            bench.sample(i, args.groups)
            if bench.rsswrap and i < args.rss_samples:
                bench.sample(i, args.groups, mode="rss")
        if tty:
            print(file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        notes.append("INTERRUPTED: partial results")
    finally:
        # finish cleaning up even if Ctrl-C is pressed again
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            spawner.finish_outstanding()
            if bench is not None:
                measured = list(bench.runtimes)
                bench.runtimes = candidates     # clean up after a skipped crun too
                for name, ids in bench.cleanup().items():
                    notes.append(f"LEAK: {name} state root still held {ids}")
            reap_strays(spawner)
            for pid in _stray_processes():
                notes.append(f"LEAK: process {pid} outlived its container (killed)")
            for path in _sweep_cgroups(prefix):
                notes.append(f"LEAK: cgroup {path} left behind (removed)")
        finally:
            for rt in candidates:
                if rt.mntns_fd >= 0:
                    os.close(rt.mntns_fd)
            namespaces.close()
            shutil.rmtree(tmp, ignore_errors=True)
            signal.signal(signal.SIGINT, old)

    if bench is None:
        return 130 if interrupted else 1
    for (group, name), msg in sorted(bench.samples.failures.items()):
        notes.append(f"{name} failed `{group}` (group skipped from then on): {msg}")
    notes = _fairness_notes(bench) + notes
    info = machine.describe(versions, pyrunc)
    info["crun mode"] = next((rt.how for rt in measured if rt.name == "crun"), "not measured")
    text, payload = report(bench, measured, args, info, notes, time.monotonic() - started)
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
            f.write("\n")
    if interrupted:
        return 130
    # a row that could not be measured is a result nobody should mistake for a pass
    return 1 if bench.samples.failures else 0


if __name__ == "__main__":
    sys.exit(main())
