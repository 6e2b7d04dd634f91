"""What the numbers were measured on."""
import datetime
import os
import subprocess


def _first(path, key):
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() == key:
                    return v.strip()
    except OSError:
        pass
    return "?"


def _interpreter(exe):
    """The Python a console script runs (its shebang), and its version."""
    try:
        with open(exe, "rb") as f:
            first = f.readline().decode(errors="replace")
        if not first.startswith("#!"):
            return "?"
        python = first[2:].strip().split()[0]
        out = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, timeout=10)
        return f"{out.stdout.strip()} ({os.path.realpath(python)})"
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def image_state(pyrunc_exe):
    """Whether the launcher's module image (pyrunc/image.py) matches the sources:
    modules edited since install.sh are imported the slow way, and a bench of
    such a tree measures less than it should."""
    from pyrunc import image, launcher
    try:
        text = launcher.body_of(pyrunc_exe)
        path = text.split("_image = ", 1)[1].split("\n", 1)[0].strip("'\"")
        total, stale = len(image.read_index(path)), image.stale(path)
    except (OSError, IndexError, ValueError, EOFError):
        return "none (run ./install.sh)"
    if not stale:
        return f"{total} modules and schemas, all current"
    return f"{len(stale)} of {total} modules and schemas STALE (run ./install.sh): {', '.join(stale[:5])}"


def cgroup_layout():
    types = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype = post.split()[0]
            if fstype in ("cgroup", "cgroup2"):
                types[pre.split()[4]] = fstype
    v1 = any(t == "cgroup" for t in types.values())
    v2 = any(t == "cgroup2" for t in types.values())
    return "hybrid (v1 + cgroup2 unified)" if v1 and v2 else "v1" if v1 else \
        "v2" if v2 else "none"


def describe(versions, pyrunc_exe):
    mem_kb = _first("/proc/meminfo", "MemTotal").split()[0]
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": _first("/proc/cpuinfo", "model name"),
        "memory": f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb.isdigit() else "?",
        "kernel": os.uname().release,
        "python (pyrunc)": _interpreter(pyrunc_exe),
        "pyrunc module image": image_state(pyrunc_exe),
        "cgroups": cgroup_layout(),
    }
    info.update(versions)
    return info


def markdown(info):
    return "\n".join(f"- {k}: {v}" for k, v in info.items()) + "\n"
