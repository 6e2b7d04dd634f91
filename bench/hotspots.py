#!/usr/bin/env python3
"""Where a pyrunc command spends its time: `sudo .venv/bin/python bench/hotspots.py [run]`.

1. floors: interpreter start-up (with and without site) next to runc's;
2. imports: `python -X importtime` of the command, the costliest modules;
3. cProfile of the command run in-process, including the processes it forks
   (the container init, and an intermediate where the plan has one), whose
   profiles are handed back through shared memory since they exec or _exit
   and, after pivot_root, cannot write to the host's files.

COMMAND is one of run (default), create, state, exec; it runs on the bench's
busybox bundle, in a temporary root that is removed afterwards.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
SLOT = 8 << 20          # bytes of shared memory per forked process's profile
SLOTS = 4


def _median_ms(argv, n=20):
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def floors():
    print("## start-up floors (median of 20, ms)")
    for argv in ([PYTHON, "-c", "pass"], [PYTHON, "-S", "-c", "pass"],
                 [PYTHON, "-I", "-S", "-c", "pass"], [PYRUNC, "--version"],
                 [shutil.which("runc") or "/usr/sbin/runc", "--version"]):
        print(f"  {_median_ms(argv):6.2f}  {' '.join(os.path.basename(a) for a in argv)}")


def _shebang_flags(path):
    """The interpreter flags of a script's #! line (the launcher's "-IS")."""
    with open(path) as f:
        line = f.readline()
    return line[2:].split()[1:] if line.startswith("#!") else []


def importtime(argv, top):
    # a file, not a pipe: a created container's init keeps our stderr open,
    # so reading a pipe to its end would wait for the container
    with tempfile.TemporaryFile("w+") as f:
        subprocess.run([PYTHON, "-X", "importtime", *_shebang_flags(PYRUNC), PYRUNC] + argv,
                       stdout=subprocess.DEVNULL, stderr=f)
        f.seek(0)
        err = f.read()
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|")
        rows.append((int(self_us), int(cum_us), name.rstrip()))
    total = sum(r[0] for r in rows)
    print(f"## imports of `pyrunc {argv[2]}`: {len(rows)} modules, {total / 1000:.1f} ms")
    print("  self ms   cum ms  module (indent = imported by the one above)")
    for self_us, cum_us, name in sorted(rows, key=lambda r: -r[0])[:top]:
        print(f"  {self_us / 1000:7.2f}  {cum_us / 1000:7.2f}  {name}")


def _child(out_dir, argv):
    """In a fresh interpreter: run pyrunc's main under cProfile, forks included."""
    import cProfile
    import marshal
    import mmap
    shm = [mmap.mmap(-1, SLOT, flags=mmap.MAP_SHARED) for _ in range(SLOTS)]
    state = {"prof": cProfile.Profile(), "depth": 0}
    real_fork, real_execve, real_exit = os.fork, os.execve, os._exit

    def dump():
        prof = state["prof"]
        prof.disable()
        prof.create_stats()
        data = marshal.dumps(prof.stats)
        slot = shm[min(state["depth"], SLOTS - 1)]
        slot.seek(0)
        slot.write(len(data).to_bytes(8, "little") + data[:SLOT - 8])

    def forked(pid):
        if pid == 0:    # profile the child on its own from here on
            state["prof"].disable()
            state["prof"], state["depth"] = cProfile.Profile(), state["depth"] + 1
            state["prof"].enable()
        return pid

    def fork():
        return forked(real_fork())

    # create clones the init with clone3 (CloneInit), exec forks into a cgroup
    import pyrunc.syscalls as sys_
    real_clone = sys_.clone_fork
    sys_.clone_fork = lambda *a: forked(real_clone(*a))

    def execve(path, args, env):
        dump()
        real_execve(path, args, env)

    def _exit(code):
        dump()
        real_exit(code)

    os.fork, os.execve, os._exit = fork, execve, _exit
    from pyrunc.cli import main
    state["prof"].enable()
    code = main(argv)
    dump()
    names = {0: "pyrunc (the command)",
             1: "first child (the init when cloned by CloneInit, else an intermediate)",
             2: "container init (forked by the intermediate)"}
    for depth, slot in enumerate(shm):
        size = int.from_bytes(slot[:8], "little")
        if size:
            with open(os.path.join(out_dir, f"{depth}.stats"), "wb") as f:
                f.write(slot[8:8 + size])
            with open(os.path.join(out_dir, f"{depth}.name"), "w") as f:
                f.write(names.get(depth, f"fork depth {depth}"))
    real_exit(code)


def show_profiles(out_dir, top):
    import marshal
    import pstats
    for name in sorted(os.listdir(out_dir)):
        if not name.endswith(".stats"):
            continue
        with open(os.path.join(out_dir, name), "rb") as f:
            raw = marshal.load(f)
        with open(os.path.join(out_dir, name.replace(".stats", ".name"))) as f:
            who = f.read()
        st = pstats.Stats(_Raw(raw))
        total = sum(v[2] for v in raw.values())
        print(f"## cProfile: {who}, {total * 1000:.1f} ms of own time "
              "(profiling inflates Python code ~2x)")
        for key in ("tottime", "cumulative"):
            print(f"  -- top {top} by {key}")
            st.sort_stats(key).print_stats(top)


class _Raw:
    """pstats.Stats accepts any object with create_stats() and .stats."""

    def __init__(self, stats):
        self.stats = stats

    def create_stats(self):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", nargs="?", default="run", choices=("run", "create", "state", "exec"))
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--_child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a._child:
        _child(a._child[0], a._child[1:])
    if os.geteuid() != 0:
        sys.exit("bench/hotspots.py: needs root")
    from bench.bundle import make_bundles
    runc = shutil.which("runc") or "/usr/sbin/runc"
    tmp = tempfile.mkdtemp(prefix="pyrunc-profile-")
    root = os.path.join(tmp, "root")
    try:
        b = make_bundles(tmp, runc)
        floors()
        needs_running = a.command in ("state", "exec")
        if needs_running:
            subprocess.run([PYRUNC, "--root", root, "run", "-d", "--bundle", b.sleep, "up"],
                           check=True)
        cmds = {"run": ["run", "--bundle", b.true], "create": ["create", "--bundle", b.true],
                "state": ["state"], "exec": ["exec"]}
        for i, label in enumerate(("importtime", "cprofile")):
            cid = "up" if needs_running else f"p{i}"
            argv = ["--root", root] + cmds[a.command] + [cid] + \
                (["true"] if a.command == "exec" else [])
            if label == "importtime":
                importtime(argv, a.top)
            else:
                out = os.path.join(tmp, "prof")
                os.mkdir(out)
                subprocess.run([PYTHON, os.path.abspath(__file__), "--_child", out] + argv,
                               check=True)
                show_profiles(out, a.top)
            if not needs_running:
                subprocess.run([PYRUNC, "--root", root, "delete", "--force", cid])
    finally:
        if os.path.isdir(root):
            for cid in os.listdir(root):
                subprocess.run([PYRUNC, "--root", root, "delete", "--force", cid])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
