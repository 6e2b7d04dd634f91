"""Scheduler, I/O priority, personality, memory policy, exec CPU affinity and
network devices of real pyrunc containers, read from inside; and the settings
pyrunc refuses (AppArmor, SELinux, Intel RDT: this host has none of them).

runc 1.1.5 ignores the first group (its runtime-spec predates them), so these
tests check against the spec and the kernel's own reports: /proc/<pid>/stat
(nice = field 19, rt_priority = 40, policy = 41), busybox ionice,
/proc/<pid>/personality, numa_maps, Cpus_allowed_list, `ip`.
"""
import json
import os
import secrets
import subprocess

import pytest

from tests.container.realkit import error_line, wait_for, wait_status

RT_RUNTIME = "/sys/fs/cgroup/cpu/cpu.rt_runtime_us"   # cgroup v1 with RT group scheduling

# what the runtime set on the process it exec'd ($$), one "key value" a line
REPORT = r"""
set -- $(cat /proc/$$/stat | sed 's/.*) //')
echo "nice ${17}"
echo "rtprio ${38}"
echo "policy ${39}"
echo "ionice $(ionice -p $$)"
echo "personality $(cat /proc/$$/personality)"
echo "machine $(uname -m)"
echo "numa $(head -1 /proc/$$/numa_maps | cut -d' ' -f2)"
echo "cpus $(grep Cpus_allowed_list /proc/$$/status | cut -f2)"
"""


@pytest.fixture
def rt(pyrunc, make_runtime):
    return make_runtime(pyrunc, name="pyrunc")


@pytest.fixture
def ref(runc, make_runtime):
    return make_runtime(runc, name="runc")


def parse(text):
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def report(rt, cid, bundle):
    r = rt.run(cid, bundle)
    assert r.returncode == 0, r.stderr
    return parse(r.stdout)


def host_cpus():
    return sorted(os.sched_getaffinity(0))


def test_process_settings_seen_from_inside(rt, bundle_factory, container_id):
    plain = report(rt, container_id(), bundle_factory(args=["sh", "-c", REPORT]))
    # the baseline: what a container gets when nothing is asked
    assert (plain["nice"], plain["policy"]) == ("0", "0")
    assert plain["personality"] == "00000000" and plain["numa"] == "default"

    overrides = {"process": {"scheduler": {"policy": "SCHED_BATCH", "nice": 5},
                             "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6}},
                 "linux": {"personality": {"domain": "LINUX32"},
                           "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0"}}}
    got = report(rt, container_id(), bundle_factory(overrides, args=["sh", "-c", REPORT]))
    assert (got["nice"], got["policy"]) == ("5", "3")            # SCHED_BATCH
    assert got["ionice"] == "best-effort: prio 6"
    assert got["personality"] == "00000008" and got["machine"] in ("i686", "i386")
    assert got["numa"] == "bind:0"


def test_idle_classes(rt, bundle_factory, container_id):
    overrides = {"process": {"scheduler": {"policy": "SCHED_IDLE"},
                             "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}},
                 "linux": {"memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0",
                                            "flags": ["MPOL_F_STATIC_NODES"]}}}
    got = report(rt, container_id(), bundle_factory(overrides, args=["sh", "-c", REPORT]))
    assert got["policy"] == "5" and got["ionice"].startswith("idle")
    assert got["numa"] == "interleave=static:0"


def test_realtime_fifo(rt, bundle_factory, container_id):
    overrides = {"process": {"scheduler": {"policy": "SCHED_FIFO", "priority": 10}}}
    if os.path.exists(RT_RUNTIME):
        # a new v1 cpu cgroup has no RT time: the config must give some
        overrides["linux"] = {"resources": {"cpu": {"realtimeRuntime": 10000,
                                                    "realtimePeriod": 1000000}}}
    got = report(rt, container_id(), bundle_factory(overrides, args=["sh", "-c", REPORT]))
    assert (got["policy"], got["rtprio"]) == ("1", "10")


@pytest.mark.skipif(not os.path.exists(RT_RUNTIME), reason="no RT group scheduling here")
def test_realtime_without_rt_time_fails_naming_the_field(rt, bundle_factory, container_id):
    cid = container_id()
    b = bundle_factory({"process": {"scheduler": {"policy": "SCHED_RR", "priority": 1}}},
                       args=["true"])
    r = rt.run(cid, b)
    assert r.returncode != 0
    msg = error_line(r.stderr)
    assert "process.scheduler" in msg and "operation not permitted" in msg
    assert "realtimeRuntime" in msg


def test_deadline(rt, bundle_factory, container_id):
    # a SCHED_DEADLINE task may not fork: the program is exec'd directly
    sched = {"policy": "SCHED_DEADLINE", "runtime": 2000000, "deadline": 10000000,
             "period": 10000000}
    b = bundle_factory({"process": {"scheduler": sched}}, args=["cat", "/proc/self/stat"])
    r = rt.run(container_id(), b)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rsplit(")", 1)[1].split()[38] == "6"


def start_detached(rt, cid, bundle):
    r = rt.run(cid, bundle, "-d")
    assert r.returncode == 0, r.stderr
    return json.loads(rt.state(cid).stdout)["pid"]


def stop(rt, cid):
    rt.kill(cid, "KILL")
    wait_status(rt, cid, "stopped")
    assert rt.delete(cid).returncode == 0


def exec_process(rt, cid, tmp_path, process):
    path = tmp_path / f"process-{secrets.token_hex(3)}.json"
    path.write_text(json.dumps(process))
    return rt.call("exec", "--process", path, cid)


def test_exec_gets_its_settings_and_the_init_keeps_its_own(rt, bundle_factory, container_id,
                                                           tmp_path):
    cid = container_id()
    b = bundle_factory({"linux": {"personality": {"domain": "LINUX32"}}}, args=["sleep", "600"])
    init = start_detached(rt, cid, b)
    try:
        proc = {"args": ["sh", "-c", REPORT], "cwd": "/", "env": ["PATH=/bin"],
                "scheduler": {"policy": "SCHED_BATCH", "nice": 3},
                "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}}
        r = exec_process(rt, cid, tmp_path, proc)
        assert r.returncode == 0, r.stderr
        got = parse(r.stdout)
        assert (got["nice"], got["policy"]) == ("3", "3")
        assert got["ionice"].startswith("idle")
        assert got["personality"] == "00000008"     # the container's, binding exec'd ones too
        with open(f"/proc/{init}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        assert (fields[16], fields[38]) == ("0", "0"), "the init must not change"
    finally:
        stop(rt, cid)


@pytest.mark.skipif(len(host_cpus()) < 2, reason="needs two CPUs")
def test_exec_cpu_affinity(rt, bundle_factory, container_id, tmp_path):
    first, last = host_cpus()[0], host_cpus()[-1]
    cid = container_id()
    # in config.json too: runtime-spec says it is not for the init
    b = bundle_factory({"process": {"execCPUAffinity": {"initial": str(first),
                                                        "final": str(first)}}},
                       args=["sleep", "600"])
    init = start_detached(rt, cid, b)
    try:
        with open(f"/proc/{init}/status") as f:
            init_cpus = next(ln for ln in f if ln.startswith("Cpus_allowed_list")).split()[1]
        assert init_cpus != str(first)
        proc = {"args": ["sh", "-c", REPORT], "cwd": "/", "env": ["PATH=/bin"],
                "execCPUAffinity": {"initial": str(first), "final": str(last)}}
        r = exec_process(rt, cid, tmp_path, proc)
        assert r.returncode == 0, r.stderr
        assert parse(r.stdout)["cpus"] == str(last)
        # without --process the config's process (and its affinity) is the base
        r = rt.call("exec", cid, "grep", "Cpus_allowed_list", "/proc/self/status")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[-1] == str(first)
        bad = dict(proc, execCPUAffinity={"final": "0-"})
        r = exec_process(rt, cid, tmp_path, bad)
        assert r.returncode != 0 and "process.execCPUAffinity.final" in r.stderr
    finally:
        stop(rt, cid)


# --- linux.netDevices ---------------------------------------------------------------

def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def link_exists(name):
    return ip("link", "show", name, check=False).returncode == 0


@pytest.fixture
def veth():
    """A veth pair in the host namespace with unique names; the first end has
    10.231.x.y/24.  (This kernel has no dummy driver.)  Removed whatever happens."""
    tag = secrets.token_hex(3)
    a, b = f"pyx{tag}a", f"pyx{tag}b"
    try:
        ip("link", "add", a, "type", "veth", "peer", "name", b)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot make a veth pair: {e}")
    addr = f"10.231.{int(tag[:2], 16)}.{int(tag[2:4], 16) % 250 + 2}"
    ip("addr", "add", f"{addr}/24", "dev", a)
    try:
        yield a, b, addr
    finally:
        for name in (a, b):
            if link_exists(name):
                ip("link", "del", name, check=False)


def test_net_device_moved_renamed_addressed_and_up(rt, bundle_factory, container_id, veth):
    a, b, addr = veth
    script = "ip -o link show c0; ip -o -4 addr show c0; ls /sys/class/net"
    bundle = bundle_factory({"linux": {"netDevices": {a: {"name": "c0"}}}},
                            args=["sh", "-c", script])
    r = rt.run(container_id(), bundle)
    assert r.returncode == 0, r.stderr
    link, inet, *names = r.stdout.splitlines()
    assert "c0" in link and ",UP" in link
    assert f"inet {addr}/24" in inet
    assert sorted(names) == ["c0", "lo"]
    # the container's namespace died with it, and a veth with it
    assert wait_for(lambda: not link_exists(a) and not link_exists(b), timeout=10)


def test_net_device_template_name(rt, bundle_factory, container_id, veth):
    a, _, _ = veth
    bundle = bundle_factory({"linux": {"netDevices": {a: {"name": "ext%d"}}}},
                            args=["ls", "/sys/class/net"])
    r = rt.run(container_id(), bundle)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["ext0", "lo"]


def test_missing_net_device_fails_naming_the_field(rt, bundle_factory, container_id):
    name = f"pyx{secrets.token_hex(3)}z"
    cid = container_id()
    r = rt.run(cid, bundle_factory({"linux": {"netDevices": {name: {}}}}, args=["true"]))
    assert r.returncode != 0
    assert error_line(r.stderr) == (f'linux.netDevices.{name}: network device "{name}" not '
                                    "found on the host: no such device")
    assert not os.path.exists(os.path.join(rt.root, cid))


# --- refused, as runc refuses them on this host ------------------------------------------

REFUSED = {
    "apparmor": ({"process": {"apparmorProfile": "docker-default"}},
                 "process.apparmorProfile: apparmor profile \"docker-default\" is specified in "
                 "config, but apparmor is not enabled on this host"),
    "selinux": ({"process": {"selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c1,c2"}},
                "process.selinuxLabel: selinux label is specified in config, but selinux is "
                "disabled or not supported"),
    "mountLabel": ({"linux": {"mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0"}},
                   "linux.mountLabel: selinux mount label is specified in config, but selinux "
                   "is disabled or not supported"),
    "intelRdt": ({"linux": {"intelRdt": {"l3CacheSchema": "L3:0=f"}}},
                 "linux.intelRdt: intelRdt.l3CacheSchema is specified in config, but Intel "
                 "RDT/CAT is not enabled"),
}


def host_has_lsm_or_rdt():
    from pyrunc.plan.extras import Host
    h = Host()
    return h.apparmor_enabled() or h.selinux_enabled() or h.resctrl_mounted()


@pytest.mark.skipif(host_has_lsm_or_rdt(), reason="written for a host without AppArmor, "
                    "SELinux and resctrl")
@pytest.mark.parametrize("what", sorted(REFUSED))
def test_refused_like_runc(rt, ref, bundle_factory, container_id, what):
    overrides, message = REFUSED[what]
    bundle = bundle_factory(overrides, args=["true"])
    cid = container_id()
    r = rt.run(cid, bundle)
    assert r.returncode != 0
    assert error_line(r.stderr) == message
    assert not os.path.exists(os.path.join(rt.root, cid))
    # runc 1.1.5 fails on the same bundle too (its own words)
    theirs = ref.run(container_id(), bundle)
    assert theirs.returncode != 0, f"runc accepted {what}: {theirs.stdout}"


def test_intel_rdt_clos_only_is_refused_where_runc_115_shrugs(rt, ref, bundle_factory,
                                                               container_id):
    """runtime-spec: intelRdt without a mounted resctrl is an error.  runc 1.1.5
    checks only the two schemata and runs a closID-only config without RDT."""
    if host_has_lsm_or_rdt():
        pytest.skip("host has resctrl")
    bundle = bundle_factory({"linux": {"intelRdt": {"closID": "guaranteed"}}}, args=["true"])
    r = rt.run(container_id(), bundle)
    assert r.returncode != 0 and "Intel RDT is not supported or enabled" in r.stderr
    assert ref.run(container_id(), bundle).returncode == 0
