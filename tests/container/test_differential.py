"""Differential tests: the same config under runc and under pyrunc; the probe
(tests/probe/probe.sh) reports what the container process sees and the two
reports must agree field by field.

Every run is also checked against the config itself (check_common + the case's
own check), so the harness cannot pass by comparing two equally wrong results.

PYRUNC_DIFF_SELFTEST=1 compares runc with itself: proof that the harness and
the probe work while pyrunc is not there yet.  Without it the tests skip when
pyrunc is not installed.
"""
import copy
import os
from dataclasses import dataclass, field
from typing import Callable

import pytest

from tests.container.helpers import deep_merge
from tests.probe.harness import diff_probes, normalize, probe_args, probe_files, run_probe

SELFTEST = os.environ.get("PYRUNC_DIFF_SELFTEST") == "1"
pytestmark = [pytest.mark.differential, pytest.mark.runc]

CAP_NUMBERS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5,
               "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10,
               "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27,
               "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31}
UNLIMITED = 2**64 - 1


def capmask(names):
    return f"{sum(1 << CAP_NUMBERS[n] for n in names or ()):016x}"


def check_common(p, config, n_fds):
    """What any correct runtime must show for `config` (exit code aside)."""
    proc = config["process"]
    user = proc.get("user", {})
    assert p["uid"] == [user.get("uid", 0)] * 4
    assert p["gid"] == [user.get("gid", 0)] * 4
    assert p["groups"] == sorted(set(user.get("additionalGids", [])))
    umask = user.get("umask")
    assert p["umask"] == (f"{umask:04o}" if umask is not None else "0022")
    assert p["cwd"] == proc.get("cwd", "/")
    assert set(proc.get("env", [])) <= set(p["env"])
    assert p["no_new_privs"] == int(bool(proc.get("noNewPrivileges")))
    assert p["caps"]["CapBnd"] == capmask(proc.get("capabilities", {}).get("bounding"))
    for rl in proc.get("rlimits", []):
        want = [str(v) if v != UNLIMITED else "unlimited" for v in (rl["soft"], rl["hard"])]
        assert p["rlimits"][rl["type"]] == want, rl["type"]
    if "hostname" in config:
        assert p["hostname"] == config["hostname"]
    for m in config.get("mounts", []):
        assert m["destination"] in {x["path"] for x in p["mounts"]}, m["destination"]
    linux = config.get("linux", {})
    for path in linux.get("maskedPaths", []):
        assert p["masked"][path] in ("missing", "devnull", "empty_dir"), path
    for path in linux.get("readonlyPaths", []):
        if p["readonly"][path] != "missing":
            assert p["readonly"][path] == {"ro_mount": True, "touch_ok": False}, path
    assert p["readonly"]["/"]["ro_mount"] == bool(config["root"].get("readonly")), "root"
    assert sorted(p["fds"], key=int) == [str(i) for i in range(3 + n_fds)]
    assert p["pid"] == 1


@dataclass(frozen=True)
class Case:
    name: str
    overrides: dict = field(default_factory=dict)   # deep-merged into the default config
    setup: Callable | None = None      # setup(config, host_dir): edits needing host paths
    files: dict = field(default_factory=dict)       # extra rootfs files
    flags: tuple = ()
    n_fds: int = 0                     # fds passed as 3, 4, ... (with --preserve-fds)
    exit_code: int = 0
    masked: tuple = ()                 # extra paths for the probe to check
    readonly: tuple = ("/",)
    check: Callable | None = None      # check(probe, config, host_dir), on both runtimes
    candidate_check: Callable | None = None   # only on pyrunc
    ignore: dict = field(default_factory=dict)     # probe field -> why runc differs


def _check_user(p, config, host):
    assert p["uid"] == [1000] * 4 and p["groups"] == [10, 20] and p["umask"] == "0077"


def _check_caps_root(p, config, host):
    caps = config["process"]["capabilities"]
    # execve as root: permitted = effective = bounding | inheritable, but with
    # no_new_privs the kernel keeps no more than the old permitted set
    want = set(caps["bounding"]) | set(caps["inheritable"])
    if config["process"].get("noNewPrivileges"):
        want &= set(caps["permitted"])
    assert p["caps"]["CapEff"] == p["caps"]["CapPrm"] == capmask(want)


def _check_caps_user(p, config, host):
    caps = config["process"]["capabilities"]
    # execve as non-root without file caps keeps only the ambient set
    assert p["caps"]["CapAmb"] == p["caps"]["CapEff"] == capmask(caps["ambient"])
    assert p["caps"]["CapInh"] == capmask(caps["inheritable"])


def _setup_mounts(config, host):
    (host / "dir").mkdir()
    (host / "dir" / "hello").write_text("hi\n")
    (host / "file").write_text("file\n")
    config["mounts"] += [
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1770", "size=1m"]},
        {"destination": "/mnt/ro", "type": "bind", "source": str(host / "dir"),
         "options": ["rbind", "ro"]},
        {"destination": "/etc/hostfile", "type": "bind", "source": str(host / "file"),
         "options": ["bind", "ro"]},
    ]


def _check_mounts(p, config, host):
    by = {m["path"]: m for m in p["mounts"]}
    assert by["/scratch"]["type"] == "tmpfs"
    assert {"nosuid", "nodev"} <= set(by["/scratch"]["opts"].split(","))
    assert "mode=1770" in by["/scratch"]["super"].split(",")
    assert by["/mnt/ro"]["opts"].split(",")[0] == "ro"
    assert by["/etc/hostfile"]["opts"].split(",")[0] == "ro"


def _add_paths(key, *paths):
    def setup(config, host):
        config["linux"][key] = config["linux"].get(key, []) + list(paths)
    return setup


def _setup_masked_readonly(config, host):
    _add_paths("maskedPaths", "/etc/secret", "/opt/secretdir")(config, host)
    _add_paths("readonlyPaths", "/opt/data")(config, host)


def _check_masked_readonly(p, config, host):
    assert p["masked"]["/etc/secret"] == "devnull"
    assert p["masked"]["/opt/secretdir"] == "empty_dir"
    assert p["readonly"]["/opt/data"] == {"ro_mount": True, "touch_ok": False}
    assert p["readonly"]["/"] == {"ro_mount": False, "touch_ok": True}


def _check_preserved(p, config, host):
    assert p["fds"]["3"] == "pipe"
    assert p["fds"]["4"].endswith("/preserved.txt")


CASES = [
    Case("default"),
    Case("user", {"process": {"user": {"uid": 1000, "gid": 1000,
                                       "additionalGids": [20, 10], "umask": 0o077}}},
         check=_check_user),
    Case("rlimits", {"process": {"rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
        {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_STACK", "soft": 4 << 20, "hard": 8 << 20},
        {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192}]}}),
    Case("caps_reduced_root", {"process": {"capabilities": {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"], "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL"], "inheritable": ["CAP_CHOWN"], "ambient": []}}},
         check=_check_caps_root),
    Case("caps_ambient_user", {"process": {
        "user": {"uid": 1000, "gid": 1000},
        "capabilities": {"bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
                         "effective": ["CAP_NET_BIND_SERVICE"],
                         "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
                         "inheritable": ["CAP_NET_BIND_SERVICE"],
                         "ambient": ["CAP_NET_BIND_SERVICE"]}}},
         check=_check_caps_user),
    Case("no_new_privileges_off", {"process": {"noNewPrivileges": False}}),
    Case("cwd", {"process": {"cwd": "/tmp"}}),
    Case("cwd_created", {"process": {"cwd": "/work/here"}, "root": {"readonly": False}}),
    Case("env", {"process": {"env": [
        "PATH=/bin", "WITH_SPACE=a b", 'QUOTE=say "hi"', "BACKSLASH=a\\b",
        "EMPTY=", "EQUALS=a=b=c", "TAB=x\ty"]}}),
    Case("hostname_domainname", {"hostname": "diff-host", "domainname": "example.org"},
         candidate_check=lambda p, c, h: p["domainname"] == "example.org" or pytest.fail(
             f"domainname {p['domainname']!r}, want 'example.org'"),
         ignore={"domainname": "runc 1.1.5 ignores config.domainname (runc 1.2 sets it)"}),
    Case("masked_readonly_paths", {"root": {"readonly": False}},
         setup=_setup_masked_readonly,
         files={"etc/secret": "s3cret\n", "opt/secretdir/a": "x\n", "opt/data/f": "d\n"},
         readonly=("/", "/opt/data"), check=_check_masked_readonly),
    Case("extra_mounts", setup=_setup_mounts, check=_check_mounts),
    Case("readonly_root_off", {"root": {"readonly": False}},
         check=lambda p, c, h: p["readonly"]["/"]["touch_ok"] or pytest.fail("/ not writable")),
    Case("preserve_fds", flags=("--preserve-fds", "2"), n_fds=2, check=_check_preserved),
    Case("exit_code", exit_code=3),
]


@pytest.fixture
def reference(runc, make_runtime):
    return make_runtime(runc, name="runc")


@pytest.fixture
def candidate(request, runc, make_runtime):
    if SELFTEST:
        return make_runtime(runc, name="runc-selftest")
    return make_runtime(request.getfixturevalue("pyrunc"), name="pyrunc")


def _open_fds(n, host):
    """n fds to preserve: a pipe's write end, then files."""
    if not n:
        return []
    r, w = os.pipe()
    os.close(r)
    fds = [w]
    (host / "preserved.txt").write_text("preserved\n")
    fds += [os.open(host / "preserved.txt", os.O_RDONLY | os.O_CLOEXEC) for _ in range(n - 1)]
    return fds


def _probe_once(case, rt, config, host, cid, bundle_factory, tmp_path):
    bundle = bundle_factory(config=config, files={**probe_files(), **case.files},
                            args=probe_args(config, case.exit_code, case.masked, case.readonly))
    fds = _open_fds(case.n_fds, host)
    try:
        res = run_probe(rt, bundle, cid, *case.flags, fds=fds)
    finally:
        for fd in fds:
            os.close(fd)
    assert res.probe is not None, "no probe output\n" + res.describe()
    assert res.returncode == case.exit_code, res.describe()
    probe = normalize(res.probe, {bundle.path: "<BUNDLE>", str(tmp_path): "<TMP>", cid: "<ID>"})
    try:
        check_common(probe, config, case.n_fds)
        if case.check:
            case.check(probe, config, host)
    except AssertionError as e:
        pytest.fail(f"{rt.name} did not apply the config: {e}\n{res.describe()}")
    return probe


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_differential(case, reference, candidate, bundle_factory, base_config, container_id,
                      tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    config = deep_merge(copy.deepcopy(base_config), case.overrides)
    config["process"]["terminal"] = False
    if case.setup:
        case.setup(config, host)
    cid = container_id()   # the same id for both: their state roots differ
    want = _probe_once(case, reference, config, host, cid, bundle_factory, tmp_path)
    got = _probe_once(case, candidate, config, host, cid, bundle_factory, tmp_path)
    if case.candidate_check and not SELFTEST:
        case.candidate_check(got, config, host)
    # `runc run` in the foreground gives the container pipes it copies to its
    # own stdio; pyrunc hands its stdio straight to the container (as crun
    # does): what fds 0-2 are may differ, that they are open may not.
    for p in (want, got):
        for fd in ("0", "1", "2"):
            if fd in p.get("fds", {}):
                p["fds"][fd] = "stdio"
    ignore = dict(case.ignore)
    if os.environ.get("PYRUNC_DIFF_IGNORE"):
        ignore.update({k: "ignored by PYRUNC_DIFF_IGNORE" for k in
                       os.environ["PYRUNC_DIFF_IGNORE"].split(",")})
    diffs = diff_probes(want, got, (reference.name, candidate.name), ignore=ignore)
    assert not diffs, f"{candidate.name} differs from {reference.name}:\n" + "\n".join(diffs)
