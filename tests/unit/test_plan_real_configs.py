"""`pyrunc plan` on the configs real clients wrote (fixtures/real-configs):
stable, readable, with the cgroup steps and a one-line seccomp summary, and
the very plan object create hands to the executor.

The host is the fake hybrid one of test_cgroup_host, so the cgroup paths do
not depend on the machine the tests run on.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from pyrunc.plan.steps import Phase

CONFIGS = "/work/shared/fixtures/real-configs"
NAMES = ["ctr-create-config.json", "ctr-create-memlimit-config.json",
         "docker-create-config.json", "podman-create-config.json"]
ROOTFS = "/nonexistent-rootfs"


def load_config(name, rootfs=ROOTFS):
    from pyrunc.spec.config import Config
    with open(os.path.join(CONFIGS, name)) as f:
        raw = json.load(f)
    raw["root"]["path"] = rootfs
    return Config.from_dict(raw, "/bundle")


@pytest.fixture
def fake_host(monkeypatch):
    """plan_cgroups asks the host; here it gets the fake hybrid host, as root."""
    from tests.unit.test_cgroup_host import hybrid
    import pyrunc.cgroups.host as host
    import pyrunc.rootless as rootless
    monkeypatch.setattr(host, "probe", hybrid)
    monkeypatch.setattr(rootless, "is_rootless", lambda: False)


def real_plan(name, cid="c1"):
    from pyrunc.plan.build import build_plan
    return build_plan(load_config(name), cid=cid)


@pytest.mark.parametrize("name", NAMES)
def test_text_is_readable(fake_host, name):
    text = real_plan(name).describe()
    lines = text.splitlines()
    sections = [line.strip("[]") for line in lines if line.startswith("[")]
    order = [p.value for p in Phase]
    assert sections == sorted(sections, key=order.index) and len(set(sections)) == len(sections)
    # every mount's flags by name, never a bare number (0 is "none")
    assert not re.search(r"flags=[1-9]|flags=0x", text)
    # the longest: JoinCgroup with ten 100-character dirs (a 64-hex id in each)
    assert all(len(line) < 1200 for line in lines), max(lines, key=len)
    # seccomp: one summary line, no syscall names
    seccomp = [line for line in lines if "CompileSeccomp" in line]
    if name.startswith(("docker", "podman")):
        (line,) = seccomp
        assert re.search(r"default=SCMP_ACT_ERRNO\(\d+\), \d+ rules", line), line
        assert len(line) < 200
        assert "accept4" not in text and "SCMP_CMP" not in text
    else:
        assert seccomp == []


@pytest.mark.parametrize("name, what", [
    ("ctr-create-config.json", "WriteCgroupFile(dir='/sys/fs/cgroup/cpu/test/sc-det', "
                               "file='cpu.shares', value='1024'"),
    ("ctr-create-memlimit-config.json", "SetMemoryLimits(dir='/sys/fs/cgroup/memory/test/sc-mem',"
                                        " v2=False, limit=67108864)"),
    ("podman-create-config.json", "file='pids.max', value='2048', "
                                  "field='linux.resources.pids.limit')"),
    ("docker-create-config.json", "SetDevicesV1(dir='/sys/fs/cgroup/devices/docker/"),
])
def test_cgroup_steps_are_in_the_plan(fake_host, name, what):
    plan = real_plan(name)
    cg = plan.phase(Phase.CGROUPS)
    names = [type(s).__name__ for s in cg]
    assert names[0] == "CreateCgroup" and "JoinCgroup" not in names
    assert names.count("CreateCgroup") == 10      # every hierarchy of the hybrid host
    # the init is born in the v2 one (plan/cloneinit.py) and joins the v1 ones
    # itself, first thing (plan/cgroups.py enter_from_child)
    clone, enter = plan.phase(Phase.NAMESPACES)[:2]
    assert type(clone).__name__ == "CloneInit" and type(enter).__name__ == "EnterCgroups"
    assert clone.v2_dir.startswith("/sys/fs/cgroup/unified/") and "pid" in clone.ns_types
    assert len(enter.v1_dirs) == 9 and enter.v2_dir == ""
    text = "\n".join(s.describe() for s in cg)
    assert what in text


@pytest.mark.parametrize("name", NAMES)
def test_json_is_the_same_plan(fake_host, name, tmp_path, capsys):
    """`pyrunc plan --format json` prints exactly build_plan's steps (what create runs)."""
    bundle = tmp_path / "b"
    (bundle / "rootfs").mkdir(parents=True)
    with open(os.path.join(CONFIGS, name)) as f:
        raw = json.load(f)
    raw["root"]["path"] = "rootfs"
    (bundle / "config.json").write_text(json.dumps(raw))
    from pyrunc.cli import main
    assert main(["plan", "--bundle", str(bundle), "--format", "json", "c1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    from pyrunc.plan.build import build_plan
    from pyrunc.spec.loader import load_bundle
    from pyrunc.commands.plan import _jsonable
    direct = build_plan(load_bundle(str(bundle)), cid="c1")
    assert printed == json.loads(json.dumps(direct.to_list(), default=_jsonable))
    assert all({"step", "phase"} <= set(s) for s in printed)
    assert main(["plan", "--bundle", str(bundle), "c1"]) == 0
    assert capsys.readouterr().out == direct.describe() + "\n"


RENDER = """
import sys
sys.path.insert(0, {repo!r})
from tests.unit.test_cgroup_host import hybrid
import pyrunc.cgroups.host as host, pyrunc.rootless as rootless
host.probe = hybrid
rootless.is_rootless = lambda: False
from tests.unit.test_plan_real_configs import real_plan
import json
from pyrunc.commands.plan import _jsonable
p = real_plan({name!r})
print(p.describe())
print(json.dumps(p.to_list(), default=_jsonable, sort_keys=True))
"""


@pytest.mark.parametrize("name", NAMES)
def test_stable_across_processes(name):
    """The same config gives the same plan, whatever the hash seed (set order etc.)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    outs = set()
    for seed in ("1", "2"):
        r = subprocess.run([sys.executable, "-c", RENDER.format(repo=repo, name=name)],
                           capture_output=True, text=True, cwd=repo,
                           env=dict(os.environ, PYTHONHASHSEED=seed))
        assert r.returncode == 0, r.stderr
        outs.add(r.stdout)
    assert len(outs) == 1


def test_the_id_changes_only_what_is_named_after_it(fake_host):
    a = real_plan("ctr-create-config.json", cid="one").describe()
    b = real_plan("ctr-create-config.json", cid="two").describe()
    diff = [(x, y) for x, y in zip(a.splitlines(), b.splitlines()) if x != y]
    assert diff == [("  JoinSessionKeyring(name='_ses.one')",
                     "  JoinSessionKeyring(name='_ses.two')")]
