"""Run the cgroup v2 suite (tests/cgroup2_guest) where cgroup v2 is real.

On a host whose /sys/fs/cgroup is a pure cgroup v2 hierarchy the suite runs
natively, as a child pytest.  Elsewhere (a v1 or hybrid host, like this
project's build machines) it runs inside a throw-away QEMU guest booted by
run-in-guest.sh next to this file.  Either way the result comes back as a
SuiteResult: exit status, the child's output and its junit counts.

The guest tests are collected only when PYRUNC_CG2_SUITE=1 (see
tests/cgroup2_guest/conftest.py), so a plain `pytest tests` on the host never
runs them twice or on the wrong hierarchy.  By hand, as root:

    .venv/bin/python -m pytest -q tests/container/test_cgroup2_suite.py
    tests/cgroup2/run-in-guest.sh -- env PYRUNC_CG2_SUITE=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 \
        .venv/bin/python -m pytest -q -p no:cacheprovider --basetemp=/tmp/cg2 tests/cgroup2_guest
"""
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().with_name("run-in-guest.sh")
GUEST_TESTS = "tests/cgroup2_guest"
ENV_FLAG = "PYRUNC_CG2_SUITE"

SETUP_TIMEOUT = 1800   # first use downloads qemu, virtme-ng and a kernel
RUN_TIMEOUT = 420      # boot + suite + power-off: ~1 min measured under TCG
GUEST_TMP = "/tmp/pyrunc-cg2"   # guest /tmp: a private overlay, discarded at power-off


@dataclass(frozen=True)
class SuiteResult:
    mode: str                  # "native" or "guest"
    returncode: int            # the child pytest's; 124 timeout, 125 guest/setup failure
    output: str                # stdout + stderr of the runner and the child pytest
    seconds: float
    counts: dict = field(default_factory=dict)    # junit: tests, failures, errors, skipped
    passed: tuple = ()         # "file::test" of every passed test
    skipped: tuple = ()        # ("file::test", reason)

    @property
    def ok(self):
        return self.returncode == 0 and self.counts.get("tests", 0) > 0

    def describe(self):
        """A failure message: what went wrong first, then the child's output."""
        if self.returncode == 124:
            head = f"cgroup v2 suite ({self.mode}) hit its time limit after {self.seconds:.0f}s"
        elif self.returncode == 125 and self.mode == "guest":
            head = ("cgroup v2 guest could not be set up or booted (see the "
                    "[run-in-guest] lines below); the v2 suite must run on every CI run")
        elif self.returncode == 0:
            head = f"cgroup v2 suite ({self.mode}) ran no test"
        else:
            head = (f"cgroup v2 suite ({self.mode}) failed with exit status "
                    f"{self.returncode} after {self.seconds:.0f}s")
        return f"{head}\n{'-' * 70}\n{self.output.rstrip()}"


def host_is_pure_v2(mountinfo="/proc/self/mountinfo"):
    """True when /sys/fs/cgroup is cgroup2 and no v1 hierarchy is mounted."""
    v2_root = v1_any = False
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype == "cgroup2" and fields[4] == "/sys/fs/cgroup":
                v2_root = True
            elif fstype == "cgroup":
                v1_any = True
    return v2_root and not v1_any


def kill_session(sid):
    """SIGKILL every process left in session `sid` (the runner and what it
    started: vng, qemu, the output relays), by pid."""
    for _ in range(50):
        pids = [p for p in _session_members(sid) if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _session_members(sid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":   # fields[3]: session id
            out.append(int(name))
    return out


def _run(argv, *, env, timeout, cwd=REPO):
    """Run argv in a new session; on timeout end the whole session.  Returns
    (returncode, output, seconds, timed_out)."""
    start = time.monotonic()
    proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        # TERM first: the runner's trap stops vng/qemu through `timeout`.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            out = b""
        timed_out = True
    finally:
        # Whatever of the session is still there (a qemu that ignored TERM,
        # a relay `cat`) goes now, by pid: nothing may outlive the session.
        kill_session(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = (out or b"").decode(errors="replace")
    rc = 124 if timed_out else proc.returncode
    return rc, text, time.monotonic() - start, timed_out


def _child_env(extra=()):
    env = dict(os.environ)
    # The host pytest's options (CI sets --basetemp there) must not reach the
    # child: a second pytest with the same basetemp would wipe the first's.
    for var in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER"):
        env.pop(var, None)
    env.update(extra)
    return env


def pytest_argv(python, basetemp, junit):
    return [python, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
            f"--basetemp={basetemp}", f"--junitxml={junit}", GUEST_TESTS]


def run_suite(outdir, *, python=None, native=None, run_timeout=RUN_TIMEOUT,
              setup_timeout=SETUP_TIMEOUT):
    """Run tests/cgroup2_guest once and return a SuiteResult.

    outdir: a host directory for the junit report (shared read-write with the
    guest).  python: the interpreter whose pytest and pyrunc run the suite
    (default: the one running this).  native: force (True) or forbid (False)
    running on the host; default: native exactly when the host is pure v2.
    """
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    junit = outdir / "junit.xml"
    junit.unlink(missing_ok=True)
    python = python or sys.executable
    if native is None:
        native = host_is_pure_v2()
    # No plugin autoload: hypothesis alone costs ~14 s of start-up under TCG.
    flags = {ENV_FLAG: "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if native:
        argv = pytest_argv(python, outdir / "basetemp", junit)
        rc, out, secs, _ = _run(argv, env=_child_env(flags), timeout=run_timeout)
        return _result("native", rc, out, secs, junit)

    rc, out, secs, _ = _run([RUNNER, "--setup"], env=_child_env(), timeout=setup_timeout)
    if rc != 0:
        return SuiteResult("guest", 125 if rc != 124 else 124, out, secs)
    # The guest gets only the variables named here (run-in-guest.sh passes
    # -e VARs), so set them on the command line of the guest pytest.
    env_args = [f"{k}={v}" for k, v in flags.items()]
    if os.environ.get("PYRUNC"):
        env_args.append(f"PYRUNC={os.environ['PYRUNC']}")
    argv = [RUNNER, "-C", REPO, "-w", outdir, "-t", str(run_timeout), "--",
            "env", *env_args, *pytest_argv(python, GUEST_TMP, junit)]
    rc, out2, secs2, _ = _run(argv, env=_child_env(), timeout=run_timeout + 60)
    return _result("guest", rc, out + out2, secs + secs2, junit)


def _result(mode, rc, out, secs, junit):
    counts, passed, skipped = _read_junit(junit)
    return SuiteResult(mode, rc, out, secs, counts, passed, skipped)


def _read_junit(path):
    """(counts, passed, skipped) from a pytest junit report; empty if absent."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}, (), ()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}, (), ()
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    passed, skipped = [], []
    for case in suite.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        skip = case.find("skipped")
        if skip is not None:
            skipped.append((name, skip.get("message", "")))
        elif case.find("failure") is None and case.find("error") is None:
            passed.append(name)
    return counts, tuple(passed), tuple(skipped)
