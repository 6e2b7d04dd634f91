"""The `pyrunc` executable: a launcher that starts Python with `-I -S`.

pip's console script starts the interpreter normally, and `site` then costs
every runtime call a few milliseconds (it scans site-packages for .pth files,
runs their code, imports sitecustomize).  Shims call the runtime several times
per container, so install.sh replaces that script with this one:

    #!/abs/path/to/python -IS
    import sys
    sys.path += [<exactly the directories site would have added>]
    from pyrunc.cli import main_and_exit
    main_and_exit()

`-I` also keeps PYTHON* variables and the current directory out of the import
path: the caller's environment cannot change what code the runtime runs.
The directories are taken from the installed interpreter at install time, so
the launcher must be rewritten when the venv changes (install.sh always does).

    python -m pyrunc.launcher TARGET    write the launcher to TARGET (atomically)
"""
import os
import sys

MARKER = "# pyrunc launcher (python -m pyrunc.launcher)"


def site_paths(python):
    """The sys.path entries `python` gets from site (site-packages, .pth lines)."""
    import subprocess
    probe = "import sys; print('\\0'.join(sys.path))"

    def path_of(*flags):
        out = subprocess.run([python, *flags, "-c", probe], capture_output=True, text=True,
                             check=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                             cwd="/")
        return out.stdout.rstrip("\n").split("\0")

    bare = set(path_of("-I", "-S"))
    # -I: no script directory and no PYTHONPATH, as the launcher will run
    return [p for p in path_of("-I") if p and p not in bare and os.path.isdir(p)]


def render(python, paths):
    """The launcher's text: `python` must be an absolute path (no /usr/bin/env)."""
    if not os.path.isabs(python):
        raise ValueError(f"interpreter path must be absolute: {python}")
    if any(c.isspace() for c in python):
        raise ValueError(f"a shebang cannot carry a path with blanks: {python}")
    return (f"#!{python} -IS\n"
            f"{MARKER}\n"
            "import sys\n"
            f"sys.path += {list(paths)!r}\n"
            "from pyrunc.cli import main_and_exit\n"
            "main_and_exit()\n")


def write(target, python=None):
    """Write the launcher for `python` (default: this interpreter) to target."""
    python = python or sys.executable
    text = render(python, site_paths(python))
    tmp = f"{target}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.rename(tmp, target)
    return text


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pyrunc.launcher TARGET")
    write(sys.argv[1])
