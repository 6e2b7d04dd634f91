"""A ready-to-run demo bundle: a busybox-static rootfs and a config that prints
a short report from inside the container.

`python -m pyrunc.demo [--runtime CMD] [--root DIR] [DIR]` (and `pyrunc demo`) builds the
bundle in DIR (default /var/lib/pyrunc/demo) and execs `pyrunc run` on it.
The test suite reuses build_busybox_rootfs() and default_config().

Only the standard library, imported lazily: this module is imported by the CLI.
"""
import os
import sys

BUSYBOX = "/bin/busybox"
DEFAULT_DIR = "/var/lib/pyrunc/demo"
DEMO_ID = "pyrunc-demo"

# Small text files every rootfs gets; no /etc/hostname: the runtime owns the hostname.
_ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
                  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\nnobody:x:65534:\n",
}
_DIRS = {"bin": 0o755, "etc": 0o755, "root": 0o700, "tmp": 0o1777,
         "proc": 0o555, "sys": 0o555, "dev": 0o755}

# What the demo container runs.  $$ is the process the runtime exec'd, so
# /proc/$$ shows what the runtime set up rather than what a child got.
_REPORT = r"""
echo "Hello from inside a pyrunc container!"
echo "  hostname : $(hostname)"
echo "  id       : $(id)"
echo "  pid      : $$"
grep Cap /proc/$$/status | sed 's/^/  /'
echo "  mounts   : $(wc -l < /proc/self/mounts)"
"""


def _busybox_applets(busybox):
    import subprocess
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True)
    # `--list` names busybox itself too; linking that would replace the binary
    # with a symlink to itself.
    return [a for a in out.stdout.split() if a and "/" not in a and a != "busybox"]


def build_busybox_rootfs(dest, busybox=BUSYBOX):
    """Create (or refresh) a minimal busybox-static rootfs at `dest`; return `dest`.

    Idempotent: existing files are left alone, missing ones are added.
    """
    import shutil
    if not os.path.isfile(busybox):
        raise FileNotFoundError(
            f"{busybox}: no such file or directory (install busybox-static)")
    dest = os.path.abspath(dest)
    os.makedirs(dest, exist_ok=True)
    for name, mode in _DIRS.items():
        path = os.path.join(dest, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
    target = os.path.join(dest, "bin", "busybox")
    if not os.path.isfile(target) or os.path.islink(target) \
            or os.path.getsize(target) != os.path.getsize(busybox):
        if os.path.lexists(target):
            os.unlink(target)
        shutil.copy2(busybox, target)
    for applet in _busybox_applets(busybox):
        link = os.path.join(dest, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    for rel, text in _ETC.items():
        path = os.path.join(dest, rel)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(text)
    return dest


def default_config(rootless=None):
    """The project's default config.json (`pyrunc spec`) as a fresh dict.

    rootless=None means "rootless unless we are root".
    """
    from pyrunc.spec.default import default_spec
    if rootless is None:
        rootless = os.geteuid() != 0
    return default_spec(rootless)


def write_demo_bundle(bundle_dir):
    """Build rootfs + config.json in `bundle_dir`; return the bundle's absolute path."""
    import json
    bundle_dir = os.path.abspath(bundle_dir)
    build_busybox_rootfs(os.path.join(bundle_dir, "rootfs"))
    config = default_config()
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/sh", "-c", _REPORT]
    config["hostname"] = DEMO_ID
    tmp = os.path.join(bundle_dir, "config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(bundle_dir, "config.json"))
    return bundle_dir


def _parse(argv):
    import argparse
    p = argparse.ArgumentParser(
        prog="pyrunc demo",
        description="Build a busybox demo bundle and run it with `pyrunc run`.")
    p.add_argument("dir", nargs="?", default=DEFAULT_DIR,
                   help=f"bundle directory (default {DEFAULT_DIR})")
    p.add_argument("--runtime", default=None,
                   help="runtime binary to run it with (default: this pyrunc)")
    p.add_argument("--root", default=None, help="state directory passed to the runtime")
    p.add_argument("--build-only", action="store_true",
                   help="only build the bundle and print its path")
    return p.parse_args(argv)


def main(argv=None):
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        bundle = write_demo_bundle(args.dir)
    except (OSError, ValueError) as e:
        print(f"pyrunc demo: {e}", file=sys.stderr)
        return 1
    if args.build_only:
        print(bundle)
        return 0
    runtime = [args.runtime] if args.runtime else [sys.executable, "-m", "pyrunc"]
    if args.root:
        runtime += ["--root", args.root]
    import subprocess
    # A demo interrupted earlier leaves its id behind; clear it so reruns work.
    subprocess.run(runtime + ["delete", "--force", DEMO_ID],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.execv(runtime[0], runtime + ["run", "--bundle", bundle, DEMO_ID])


if __name__ == "__main__":
    sys.exit(main())
