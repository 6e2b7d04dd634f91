"""The measurements: one function per group of rows, one runtime per call.

A sample runs every selected group once for every runtime, the runtimes
interleaved (in an order that changes from sample to sample, see
sample_order) so that machine noise and cache warmth spread evenly over them.
"""
import itertools
import os
import time

from bench.procs import (CommandFailed, Result, read_pid_file, read_rss_file, reap_strays,
                         wait_exit)
from bench.stats import Samples

GROUPS = ("run", "shim", "exec", "state", "kill", "concurrent")
MIB = 1024.0
NS_PER_MS = 1e6


def sample_order(runtimes, i):
    """The runtimes' order in sample i: every permutation in turn.  A rotation
    (a b c, b c a, c a b) would keep each runtime behind the same one in every
    sample, and what a runtime leaves for the kernel to finish (a network
    namespace torn down after its init exits takes milliseconds of kernel
    work) would always land on the same neighbour's next command."""
    orders = list(itertools.permutations(runtimes))
    return list(orders[i % len(orders)])


class Bench:
    def __init__(self, spawner, namespaces, bundles, runtimes, tmp, prefix, concurrency,
                 settle=0.0, repeat=1):
        self.spawner = spawner
        self.ns = namespaces
        self.bundles = bundles
        self.runtimes = runtimes
        self.tmp = tmp
        self.prefix = prefix
        self.concurrency = concurrency
        self.settle = settle    # seconds of quiet before each runtime's turn (--settle)
        self.repeat = repeat    # runs of each measurement in a turn, the last one recorded
        self.recording = True
        self.samples = Samples()
        self.live = {rt.name: set() for rt in runtimes}   # ids that may still exist
        self.in_cgroup = {}     # runtime -> was its init in a cgroup named after the id?
        self.mode = "time"      # or "rss": commands run under rsswrap, untimed
        self.rsswrap = None
        self.rss_file = os.path.join(tmp, "maxrss")
        self._seq = 0
        self.last = None        # the runtime whose command ran last

    # -- plumbing ---------------------------------------------------------

    def new_id(self, rt):
        self._seq += 1
        cid = f"{self.prefix}-{self._seq}"
        self.live[rt.name].add(cid)
        return cid

    def cmd(self, rt, *args):
        argv = rt.argv(*args)
        if self.mode == "rss":
            argv = [self.rsswrap, self.rss_file] + argv
        with self.ns.entered(rt):
            r = self.spawner.run(argv)
        self.last = rt.name
        if self.mode == "rss":
            # the wrapper's own wait4 figure would count the bench: use the runtime's
            r = Result(r.ns, read_rss_file(self.rss_file))
        return r

    def force_delete(self, rt, cid):
        try:
            self.cmd(rt, "delete", "--force", cid)
        except (CommandFailed, OSError):
            pass    # it may never have been created; cleanup checks the root later
        self.live[rt.name].discard(cid)

    def record(self, key, rt, value, previous=None):
        # timing passes record times and the waiting init's memory; peak-RSS
        # passes (commands run under rsswrap) only the peak RSS rows
        if self.recording and key.startswith("rss.") == (self.mode == "rss"):
            self.samples.add(key, rt.name, value, previous)

    def guarded(self, group, rt, fn, *args):
        """Run one measurement; a failure disables this group for this runtime.
        With --repeat N it runs N times in a row and only the last is
        recorded: it follows the same runtime's own commands (not for kill,
        whose container is gone after the first)."""
        if (group, rt.name) in self.samples.failures:
            return
        if self.settle:
            # outside the timed window: what the previous runtime left the
            # kernel to finish (or kept warm for the next one) is over by now
            time.sleep(self.settle)
        runs = 1 if group == "kill" else self.repeat
        try:
            for k in range(runs):
                self.recording = k == runs - 1
                fn(rt, *args)
        except (CommandFailed, TimeoutError, OSError) as e:
            self.samples.failures[(group, rt.name)] = str(e)
        finally:
            self.recording = True

    # -- one sample -------------------------------------------------------

    def sample(self, i, groups, mode="time"):
        """One sample of every group in `groups`, every runtime in turn."""
        self.mode = mode
        try:
            self._sample(i, groups - {"concurrent"} if mode == "rss" else groups)
        finally:
            self.mode = "time"

    def _sample(self, i, groups):
        order = sample_order(self.runtimes, i)
        if "run" in groups:
            for rt in order:
                self.guarded("run", rt, self.run_true)
        if "shim" in groups:
            for rt in order:
                self.guarded("shim", rt, self.shim)
        if groups & {"exec", "state", "kill"}:
            self.running(order, groups)
        if "concurrent" in groups:
            for n in self.concurrency:
                for rt in order:
                    self.guarded("concurrent", rt, self.concurrent, n)

    # -- the groups -------------------------------------------------------

    def run_true(self, rt):
        cid = self.new_id(rt)
        try:
            r = self.cmd(rt, "run", "--bundle", self.bundles.true, cid)
            self.live[rt.name].discard(cid)
        finally:
            if cid in self.live[rt.name]:
                self.force_delete(rt, cid)
        self.record("run", rt, r.ns / NS_PER_MS)
        self.record("rss.run", rt, r.maxrss_kb / MIB)

    def shim(self, rt):
        """create, start, wait, delete as separate commands, as a shim does."""
        cid = self.new_id(rt)
        pid_file = os.path.join(self.tmp, f"{cid}.pid")
        pidfd = -1
        try:
            previous = self.last
            create = self.cmd(rt, "create", "--bundle", self.bundles.true,
                              "--pid-file", pid_file, cid)
            pid = read_pid_file(pid_file)
            pidfd = os.pidfd_open(pid)
            mem = init_memory(pid)
            self.in_cgroup[rt.name] = in_own_cgroup(pid, cid)
            start = self.cmd(rt, "start", cid)
            t0 = time.perf_counter_ns()
            wait_exit(pidfd)
            waited = time.perf_counter_ns() - t0
            reap_strays(self.spawner)     # the init is ours (subreaper): reap it first
            delete = self.cmd(rt, "delete", cid)
            self.live[rt.name].discard(cid)
        finally:
            if pidfd >= 0:
                os.close(pidfd)
            if cid in self.live[rt.name]:
                self.force_delete(rt, cid)
            if os.path.exists(pid_file):
                os.unlink(pid_file)
        ms = {"create": create.ns, "start": start.ns, "wait": waited, "delete": delete.ns}
        for step, ns in ms.items():
            self.record(f"shim.{step}", rt, ns / NS_PER_MS, previous)
        self.record("shim.csd", rt, (create.ns + start.ns + delete.ns) / NS_PER_MS)
        self.record("shim.total", rt, sum(ms.values()) / NS_PER_MS)
        for step, r in (("create", create), ("start", start), ("delete", delete)):
            self.record(f"rss.{step}", rt, r.maxrss_kb / MIB)
        for name, kib in mem.items():
            self.record(f"init.{name}", rt, kib / MIB)

    def running(self, order, groups):
        """exec/state/kill against a running `sleep` container per runtime."""
        up = {}     # runtime name -> (cid, pidfd)
        try:
            for rt in order:
                if all((g, rt.name) in self.samples.failures
                       for g in ("exec", "state", "kill") if g in groups):
                    continue
                try:
                    up[rt.name] = self.start_sleeper(rt)
                except (CommandFailed, TimeoutError, OSError) as e:
                    for g in ("exec", "state", "kill"):
                        self.samples.failures.setdefault((g, rt.name), f"setup: {e}")
            live = [rt for rt in order if rt.name in up]
            if "state" in groups:
                for rt in live:
                    self.guarded("state", rt, self.timed, "state", up[rt.name][0])
            if "exec" in groups:
                for rt in live:
                    self.guarded("exec", rt, self.timed, "exec", up[rt.name][0], "true")
            if "kill" in groups:
                for rt in live:
                    self.guarded("kill", rt, self.timed, "kill", up[rt.name][0], "KILL")
                for rt in live:
                    # a shim reaps the killed init before it calls delete
                    self.guarded("kill", rt, _wait_killed, up[rt.name][1])
                reap_strays(self.spawner)
        finally:
            for rt in order:
                if rt.name not in up:
                    continue
                cid, pidfd = up[rt.name]
                self.force_delete(rt, cid)     # kills it if `kill` was not measured
                try:
                    wait_exit(pidfd, 10.0)
                except TimeoutError:
                    self.samples.failures.setdefault(
                        ("kill", rt.name), f"{cid}: init still alive after delete --force")
                finally:
                    os.close(pidfd)
                reap_strays(self.spawner)

    def start_sleeper(self, rt):
        cid = self.new_id(rt)
        pid_file = os.path.join(self.tmp, f"{cid}.pid")
        try:
            self.cmd(rt, "create", "--bundle", self.bundles.sleep, "--pid-file", pid_file, cid)
            pidfd = os.pidfd_open(read_pid_file(pid_file))
            try:
                self.cmd(rt, "start", cid)
            except BaseException:
                os.close(pidfd)
                raise
        except BaseException:
            self.force_delete(rt, cid)
            raise
        finally:
            if os.path.exists(pid_file):
                os.unlink(pid_file)
        return cid, pidfd

    def timed(self, rt, command, cid, *rest):
        previous = self.last
        r = self.cmd(rt, command, cid, *rest)
        self.record(command, rt, r.ns / NS_PER_MS, previous)
        self.record(f"rss.{command}", rt, r.maxrss_kb / MIB)

    def concurrent(self, rt, n):
        """n `run`s started at once: wall time until the last one has finished."""
        ids = [self.new_id(rt) for _ in range(n)]
        argvs = [rt.argv("run", "--bundle", self.bundles.true, cid) for cid in ids]
        errors = []
        with self.ns.entered(rt):
            t0 = time.perf_counter_ns()
            pids = [self.spawner.spawn(argv, slot) for slot, argv in enumerate(argvs)]
            for slot, pid in enumerate(pids):
                try:
                    self.spawner.wait(pid, argvs[slot], slot)
                    self.live[rt.name].discard(ids[slot])
                except CommandFailed as e:
                    errors.append(e)
            wall = time.perf_counter_ns() - t0
        reap_strays(self.spawner)
        for cid in list(self.live[rt.name] & set(ids)):
            self.force_delete(rt, cid)
        if errors:
            raise CommandFailed(["concurrent", str(n)], len(errors), str(errors[0]))
        self.record(f"conc{n}.wall", rt, wall / NS_PER_MS)
        self.record(f"conc{n}.per", rt, wall / n / NS_PER_MS)

    # -- leaving nothing behind ------------------------------------------

    def cleanup(self):
        """Delete every container we may have left; the names still in a root."""
        leftovers = {}
        for rt in self.runtimes:
            names = set(self.live[rt.name])
            if os.path.isdir(rt.root):
                names |= set(os.listdir(rt.root))
            for cid in sorted(names):
                self.force_delete(rt, cid)
            if os.path.isdir(rt.root) and os.listdir(rt.root):
                leftovers[rt.name] = sorted(os.listdir(rt.root))
        reap_strays(self.spawner)
        return leftovers


def _wait_killed(_rt, pidfd):
    wait_exit(pidfd, 10.0)


def init_memory(pid):
    """VmRSS, RssAnon and Pss (KiB) of a process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                out["rss" if key == "VmRSS" else "anon"] = int(value.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                out["pss"] = int(line.split()[1])
    return out


def in_own_cgroup(pid, cid):
    """Whether the process sits in a cgroup named after the container (any hierarchy)."""
    with open(f"/proc/{pid}/cgroup") as f:
        return any(line.rstrip("\n").rsplit("/", 1)[-1] == cid for line in f)
