"""The `pyrunc` executable: a launcher that starts Python with `-I -S`.

pip's console script starts the interpreter normally, and `site` then costs
every runtime call a few milliseconds (it scans site-packages for .pth files,
runs their code, imports sitecustomize).  Shims call the runtime several times
per container, so install.sh replaces that script with this one:

    #!<package dir>/_boot/python3 -IS
    import _pyrunc_launcher     # from <package dir>/_boot/lib, compiled:

    import gc, marshal, posix, sys
    gc.disable()
    sys.path += [<the directories site would have added, if missing>]
    <pyrunc/image.py bootstrap(): ImageFinder from <package dir>/_image>
    from pyrunc.cli import main_and_exit
    main_and_exit()

pyrunc's own modules come from pyrunc/_image, all of them compiled into one
file that this command writes too (see pyrunc/image.py: ~1.5 ms a create).
The interpreter is named through a boot directory whose python3._pth sets
sys.path before Python starts (see pyrunc/bootdir.py: ~0.27 ms a call).

The cyclic garbage collector is off: a runtime call lives milliseconds and
reference counting frees what it drops, while a collection during the imports
walks every object made so far, and one after create's fork makes each
process copy the pages it walks (~0.8 ms a `run`).  The few commands that
can run for long (events, the tty proxy) turn it back on.

`-I` also keeps PYTHON* variables and the current directory out of the import
path: the caller's environment cannot change what code the runtime runs.
The directories are taken from the installed interpreter at install time, so
the launcher must be rewritten when the venv changes (install.sh always does).

    python -m pyrunc.launcher TARGET    write the launcher to TARGET, the image
                                        and the boot directory, file by file
                                        atomically
"""
import os
import sys

MARKER = "# pyrunc launcher (python -m pyrunc.launcher)"
MODULE = "_pyrunc_launcher"   # the launcher's body, in the boot directory's lib


def site_paths(python, bare=None):
    """The sys.path entries `python` gets from site (site-packages, .pth
    lines); bare: its sys.path under -I -S, if the caller has it (bootdir.probe)."""
    import subprocess
    probe = "import sys; print('\\0'.join(sys.path))"

    def path_of(*flags):
        out = subprocess.run([python, *flags, "-c", probe], capture_output=True, text=True,
                             check=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                             cwd="/")
        return out.stdout.rstrip("\n").split("\0")

    bare = set(path_of("-I", "-S") if bare is None else bare)
    # -I: no script directory and no PYTHONPATH, as the launcher will run
    return [p for p in path_of("-I") if p and p not in bare and os.path.isdir(p)]


def body(paths, image=None):
    """What the launcher runs: image: the path of pyrunc's module image
    (pyrunc/image.py) to import from."""
    text = ("import gc, marshal, posix, sys\n"
            "gc.disable()\n"
            # already there when the interpreter read the boot dir's ._pth
            f"sys.path += [p for p in {list(paths)!r} if p not in sys.path]\n")
    if image:
        from pyrunc.image import bootstrap
        text += bootstrap(image)
    return text + ("from pyrunc.cli import main_and_exit\n"
                   "main_and_exit()\n")


def render_stub(python, lib):
    """The launcher that imports its body, compiled, from lib (BOOT/lib):
    Python compiles a script at every start, a module only once (~0.1 ms a call).
    `python` must be an absolute path (no /usr/bin/env)."""
    if not os.path.isabs(python):
        raise ValueError(f"interpreter path must be absolute: {python}")
    if any(c.isspace() for c in python):
        raise ValueError(f"a shebang cannot carry a path with blanks: {python}")
    return (f"#!{python} -IS\n{MARKER}\n"
            f"# runs {lib}/{MODULE}.py\n"
            "import sys\n"
            f"if {lib!r} not in sys.path:   # an interpreter that ignored python3._pth\n"
            f"    sys.path.insert(0, {lib!r})\n"
            f"import {MODULE}\n")


def body_of(launcher):
    """The text a written launcher runs: its body module's for a stub, else its own."""
    with open(launcher) as f:
        text = f.read()
    for line in text.splitlines()[:3]:
        if line.startswith("# runs "):
            with open(line[len("# runs "):]) as f:
                return f.read()
    return text


def write(target, python=None, image=None, boot=None):
    """Write the launcher for `python` (default: this interpreter) to target,
    the image of pyrunc's modules it imports them from (default pyrunc/_image)
    and the boot directory it starts the interpreter through, which holds its
    body (default pyrunc/_boot).  Returns the body's text."""
    python = python or sys.executable
    package = os.path.dirname(os.path.abspath(__file__))
    image = image or os.path.join(package, "_image")
    boot = boot or os.path.join(package, "_boot")
    from pyrunc import bootdir, image as image_module
    image_module.write_lean(image, package, python)
    probed = bootdir.probe(python)
    _, _, bare = probed
    paths = site_paths(python, bare)
    text = body(paths, image)
    exe = bootdir.write(boot, python, paths, {MODULE: text}, probed)
    tmp = f"{target}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(render_stub(exe, bootdir.lib(boot)))
    os.chmod(tmp, 0o755)
    os.rename(tmp, target)
    return text


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pyrunc.launcher TARGET")
    write(sys.argv[1])
