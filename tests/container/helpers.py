"""Helpers for tests that run real containers: bundles, and a runtime wrapper
usable for runc and pyrunc alike (the leak checker lives in leaks.py).

Everything here shells out to the runtime binary exactly as a client would;
nothing imports pyrunc's runtime code.
"""
import copy
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNC = "/usr/sbin/runc"


def pyrunc_path():
    return os.environ.get("PYRUNC") or str(REPO / ".venv" / "bin" / "pyrunc")


def runtime_problem(binary):
    """Why `binary` cannot be used as a runtime, or None when it can."""
    if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        return f"{binary} is not installed (run ./install.sh)"
    try:
        r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{binary} --version failed: {e}"
    if r.returncode != 0:
        return f"{binary} --version exited {r.returncode}: {r.stderr.strip()[:200]}"
    return None


def new_container_id():
    # Short: ids end up in cgroup names, socket paths and process listings.
    return "pt-" + secrets.token_hex(5)


# --------------------------------------------------------------------- bundles

def copy_rootfs(src, dest):
    """Copy a rootfs tree: symlinks and big files hard-linked (creating a symlink
    costs ~70x a link here), small files copied so that a container that writes
    /etc/passwd cannot change the shared session copy."""
    src = str(src)
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        out = os.path.normpath(os.path.join(dest, rel))
        os.makedirs(out, exist_ok=True)
        os.chmod(out, os.stat(dirpath).st_mode & 0o7777)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            s, d = os.path.join(dirpath, name), os.path.join(out, name)
            if os.path.islink(s) or os.path.getsize(s) > 65536:
                os.link(s, d, follow_symlinks=False)
            else:
                shutil.copy2(s, d)
    return dest


def deep_merge(base, overrides):
    """Dicts merge recursively; anything else in `overrides` replaces; None deletes."""
    for k, v in overrides.items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


@dataclass
class Bundle:
    path: str
    config: dict

    @property
    def rootfs(self):
        return os.path.join(self.path, self.config["root"]["path"])

    def write_config(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)

    def __fspath__(self):
        return self.path

    def __str__(self):
        return self.path


def make_bundle(dest, base_rootfs, config, *, args=None, overrides=None, files=None):
    """A bundle at `dest`: a copy of `base_rootfs`, a copy of `config` (+ overrides,
    args) with terminal=false, and `files` ({rootfs-relative path: str|bytes|Path})."""
    os.makedirs(dest)
    config = copy.deepcopy(config)
    config["process"]["terminal"] = False
    if overrides:
        deep_merge(config, overrides)
    if args is not None:
        config["process"]["args"] = list(args)
    bundle = Bundle(str(dest), config)
    copy_rootfs(base_rootfs, bundle.rootfs)
    for rel, content in (files or {}).items():
        target = os.path.join(bundle.rootfs, rel.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if isinstance(content, Path):
            shutil.copy2(content, target)
        else:
            with open(target, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
    bundle.write_config()
    return bundle


# --------------------------------------------------------------------- runtime

class Runtime:
    """One runtime binary with a private --root.  Every method returns the
    CompletedProcess (text mode) and never raises on a non-zero exit."""

    def __init__(self, binary, root, *, name=None, log=False, timeout=60, watch=None):
        self.binary = str(binary)
        self.root = str(root)
        self.name = name or os.path.basename(self.binary)
        self.log_path = os.path.join(os.path.dirname(self.root), f"{self.name}-log.json") if log else None
        self.timeout = timeout
        self.watch = watch
        os.makedirs(self.root, exist_ok=True)
        if watch is not None:
            watch.runtimes[self.root] = self.binary

    def argv(self, *args):
        head = [self.binary, "--root", self.root]
        if self.log_path:
            head += ["--log", self.log_path, "--log-format", "json"]
        return head + [str(a) for a in args]

    def call(self, *args, stdin=subprocess.DEVNULL, input=None, detached_io=False,
             timeout=None, **popen_kw):
        """Run the runtime.  detached_io: stdout/stderr go to temp files instead of
        pipes, needed when a container outlives the call (create, run -d): it
        inherits them and would hold pipes open forever."""
        # subprocess.run refuses stdin= together with input= (it makes the pipe itself)
        kw = dict(input=input) if input is not None else dict(stdin=stdin)
        kw.update(text=True, timeout=timeout or self.timeout, **popen_kw)
        if not detached_io:
            return subprocess.run(self.argv(*args), capture_output=True, **kw)
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            r = subprocess.run(self.argv(*args), stdout=out, stderr=err, **kw)
            out.seek(0)
            err.seek(0)
            r.stdout, r.stderr = out.read(), err.read()
            return r

    def _id(self, cid):
        if self.watch is not None:
            self.watch.ids.add(cid)
        return cid

    def run(self, cid, bundle, *flags, **kw):
        if "-d" in flags or "--detach" in flags:
            kw.setdefault("detached_io", True)
        return self.call("run", "--bundle", bundle, *flags, self._id(cid), **kw)

    def create(self, cid, bundle, *flags, **kw):
        kw.setdefault("detached_io", True)
        return self.call("create", "--bundle", bundle, *flags, self._id(cid), **kw)

    def start(self, cid, **kw):
        return self.call("start", self._id(cid), **kw)

    def state(self, cid, **kw):
        return self.call("state", self._id(cid), **kw)

    def state_json(self, cid):
        r = self.state(cid)
        assert r.returncode == 0, f"{self.name} state {cid} failed: {r.stderr}"
        return json.loads(r.stdout)

    def kill(self, cid, sig="KILL", *, all=False, **kw):
        return self.call("kill", *(["--all"] if all else []), self._id(cid), sig, **kw)

    def delete(self, cid, *, force=False, **kw):
        return self.call("delete", *(["--force"] if force else []), self._id(cid), **kw)

    def list(self, fmt="json", **kw):
        return self.call("list", "--format", fmt, **kw)

    def log_entries(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]
