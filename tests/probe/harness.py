"""Run tests/probe/probe.sh in a container and compare what two runtimes showed it.

    bundle = bundle_factory(args=probe_args(config, exit_code=3), files=probe_files())
    result = run_probe(runtime, bundle)          # ProbeRun(returncode, probe, ...)
    problems = diff_probes(a.probe, b.probe, ("runc", "pyrunc"))
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path

PROBE = Path(__file__).resolve().parent / "probe.sh"
PROBE_IN_ROOTFS = "/probe.sh"


def probe_files():
    """`files` for a bundle: the probe script at /probe.sh in the rootfs."""
    return {PROBE_IN_ROOTFS: PROBE}


def probe_args(config, exit_code=0, masked=(), readonly=()):
    """process.args that run the probe; it checks the config's masked and
    read-only paths plus the extra ones given."""
    linux = config.get("linux", {})
    masked = list(dict.fromkeys([*linux.get("maskedPaths", []), *masked]))
    readonly = list(dict.fromkeys([*linux.get("readonlyPaths", []), *readonly]))
    return ["/bin/sh", PROBE_IN_ROOTFS, str(exit_code), ",".join(masked), ",".join(readonly)]


@dataclass
class ProbeRun:
    runtime: str
    returncode: int
    probe: dict | None
    stdout: str
    stderr: str

    def describe(self):
        return (f"{self.runtime}: exit {self.returncode}\n--- stdout\n{self.stdout[-3000:]}"
                f"\n--- stderr\n{self.stderr[-3000:]}")


def _place_fds(fds):
    """preexec_fn making `fds` the child's 3, 4, ... and marking every other fd
    above them close-on-exec, so the runtime gets exactly 0-2 and these."""
    def place():
        import fcntl
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1000) for fd in fds]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)        # inheritable
        for name in os.listdir("/proc/self/fd"):
            if int(name) >= 3 + len(fds):
                try:
                    os.set_inheritable(int(name), False)
                except OSError:
                    pass
    return place


def run_probe(runtime, bundle, cid=None, *flags, fds=(), timeout=None):
    """`runtime run` the bundle (whose args are probe_args(...)) in the foreground;
    return a ProbeRun with the parsed probe output (None if there was none)."""
    from tests.container.helpers import new_container_id
    cid = cid or new_container_id()
    kw = {"close_fds": False, "preexec_fn": _place_fds(list(fds))}
    if timeout:
        kw["timeout"] = timeout
    r = runtime.run(cid, bundle, *flags, **kw)
    probe = None
    for line in reversed(r.stdout.splitlines()):
        if line.startswith("{"):
            try:
                probe = json.loads(line)
            except ValueError:
                pass
            break
    return ProbeRun(runtime.name, r.returncode, probe, r.stdout, r.stderr)


def normalize(value, replacements):
    """Replace host-specific substrings (bundle paths, ids) everywhere."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [normalize(v, replacements) for v in value]
    if isinstance(value, dict):
        return {normalize(k, replacements): normalize(v, replacements) for k, v in value.items()}
    return value


def _key(item):
    return json.dumps(item, sort_keys=True)


def diff_probes(a, b, names=("a", "b"), ignore=()):
    """Field-by-field differences between two probe dicts, as readable lines."""
    na, nb = names
    out = []
    for k in sorted(set(a) | set(b)):
        if k in ignore:
            continue
        va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
        if va == vb:
            continue
        if isinstance(va, list) and isinstance(vb, list):
            ka, kb = {_key(x): x for x in va}, {_key(x): x for x in vb}
            only_a = [ka[x] for x in ka if x not in kb]
            only_b = [kb[x] for x in kb if x not in ka]
            out.append(f"{k}:")
            out += [f"    only {na}: {json.dumps(x)}" for x in only_a]
            out += [f"    only {nb}: {json.dumps(x)}" for x in only_b]
            if not only_a and not only_b:
                out.append(f"    same items, different order/count ({len(va)} vs {len(vb)})")
        elif isinstance(va, dict) and isinstance(vb, dict):
            out.append(f"{k}:")
            for sub in sorted(set(va) | set(vb)):
                sa, sb = va.get(sub, "<absent>"), vb.get(sub, "<absent>")
                if sa != sb:
                    out.append(f"    {sub}: {na}={json.dumps(sa)}  {nb}={json.dumps(sb)}")
        else:
            out.append(f"{k}: {na}={json.dumps(va)}  {nb}={json.dumps(vb)}")
    return out
