"""cgroups on this cgroup v1 (hybrid) host, through the pyrunc CLI only.

Each limit must bite, seen through the kernel's counters in the container's
cgroup (memory.failcnt, pids.events, cpu.stat, ...); the cgroups sit exactly
where runc puts them (clients read the files directly); and every test proves
afterwards that none of the container's cgroups is left in /sys/fs/cgroup.
"""
import json
import os
import subprocess
import time

import pytest

from tests.container.realkit import wait_for, without_namespace

CG = "/sys/fs/cgroup"
MiB = 1024 * 1024
FIXTURES = "/work/shared/fixtures/real-configs"

pytestmark = pytest.mark.skipif(not os.path.isdir(f"{CG}/memory") or
                                not os.path.isdir(f"{CG}/devices"),
                                reason="needs a cgroup v1 host (memory and devices hierarchies)")


@pytest.fixture
def rt(pyrunc, make_runtime):
    return make_runtime(pyrunc, name="pyrunc")


# --- reading the host ---------------------------------------------------------------

def v1_mounts():
    """{controller: mountpoint} of the v1 hierarchies, "" for the cgroup2 tree."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup":
                for opt in fields[sep + 3].split(","):
                    if opt not in ("rw", "ro") and not opt.startswith("release_agent"):
                        out[opt] = fields[4]
            elif fields[sep + 1] == "cgroup2" and fields[4].startswith(CG):
                out[""] = fields[4]
    return out


def dirs_of(pid):
    """{controller: host dir} of a live process, from /proc/PID/cgroup."""
    mounts, out = v1_mounts(), {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                if c in mounts:
                    out[c] = mounts[c] + path.rstrip("/")
    return out


def leftovers(*names):
    """cgroup directories anywhere under /sys/fs/cgroup whose name contains a name."""
    found = []
    for top in os.listdir(CG):
        for dirpath, dirnames, _ in os.walk(os.path.join(CG, top)):
            found += [os.path.join(dirpath, d) for d in dirnames if any(n in d for n in names)]
            if dirpath.count("/") > 12:
                dirnames[:] = []
    return found


def read(path):
    with open(path) as f:
        return f.read().strip()


def flat(path):
    return {k: int(v) for k, v in (line.split() for line in read(path).splitlines())}


def own_path(controller):
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    return "/"


# --- containers ---------------------------------------------------------------------

def bundle(bundle_factory, cid, args, resources=None, parent=True, top=None, **linux):
    """A bundle whose cgroups are /<cid>-p/<cid> (the parent named after the id
    too, so the leak checks see it) unless parent=False (no cgroupsPath).
    top: more top-level config overrides; linux: more linux ones."""
    over = {"linux": dict(linux), **(top or {})}
    if parent:
        over["linux"]["cgroupsPath"] = f"/{cid}-p/{cid}"
    if resources is not None:
        over["linux"]["resources"] = resources
    return bundle_factory(config_overrides=over, args=args)


def cg(controller, cid):
    return f"{v1_mounts()[controller]}/{cid}-p/{cid}"


def run_kept(rt, cid, b, timeout=60):
    """pyrunc run --keep: the stopped container (and its cgroups) stays until delete."""
    return rt.run(cid, b, "--keep", timeout=timeout)


def delete_and_check(rt, cid):
    r = rt.delete(cid, force=True)
    assert r.returncode == 0, f"delete --force failed: {r.stderr}"
    left = leftovers(cid)
    assert not left, f"pyrunc delete left cgroups behind: {left}"


def start_detached(rt, cid, b):
    r = rt.run(cid, b, "--detach")
    assert r.returncode == 0, f"run --detach failed: {r.stderr}"
    return rt.state_json(cid)["pid"]


# --- placement ------------------------------------------------------------------------

def test_default_placement_matches_runc(rt, runc, make_runtime, bundle_factory, container_id):
    """No cgroupsPath: <own cgroup>/<id> in every hierarchy, as runc does (on
    this host the memory cgroup sits below this process's own memory cgroup)."""
    ref = make_runtime(runc, name="runc")
    got = {}
    for runtime in (rt, ref):
        cid = container_id()
        b = bundle(bundle_factory, cid, ["sleep", "600"], parent=False)
        pid = start_detached(runtime, cid, b)
        got[runtime.name] = {c: d.replace(cid, "<id>") for c, d in dirs_of(pid).items()}
        delete_and_check(runtime, cid)
    assert got["pyrunc"] == got["runc"]
    mem = got["pyrunc"]["memory"]
    assert mem == f"{v1_mounts()['memory']}{own_path('memory').rstrip('/')}/<id>"


def test_absolute_path_creates_and_removes_parents(rt, bundle_factory, container_id):
    cid = container_id()
    b = bundle(bundle_factory, cid, ["sleep", "600"])
    pid = start_detached(rt, cid, b)
    dirs = dirs_of(pid)
    for c in ("memory", "cpu", "cpuset", "pids", "devices", "freezer", "blkio", "name=systemd"):
        assert dirs[c] == cg(c, cid), c
    assert dirs[""] == f"{v1_mounts()['']}/{cid}-p/{cid}"   # the hybrid unified tree too
    delete_and_check(rt, cid)
    assert not os.path.exists(f"{v1_mounts()['memory']}/{cid}-p")


def test_exec_joins_the_cgroups(rt, bundle_factory, container_id):
    cid = container_id()
    b = bundle(bundle_factory, cid, ["sleep", "600"])
    pid = start_detached(rt, cid, b)
    r = rt.call("exec", cid, "cat", "/proc/self/cgroup")
    assert r.returncode == 0, r.stderr
    init = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in read(f"/proc/{pid}/cgroup")
            .splitlines()}
    assert all(p == f"/{cid}-p/{cid}" for p in init.values()), init
    for line in r.stdout.splitlines():
        _, ctrls, path = line.split(":", 2)
        assert path == init[ctrls], f"exec'd process in {ctrls}:{path}, init in {init[ctrls]}"
    delete_and_check(rt, cid)


def test_failed_create_leaves_no_cgroup(rt, bundle_factory, container_id):
    """A limit the kernel refuses (cpus this host lacks) fails create, naming
    the field; the cgroups made until then are gone."""
    cid = container_id()
    b = bundle(bundle_factory, cid, ["true"], resources={"cpu": {"cpus": "999"}})
    r = rt.create(cid, b)
    assert r.returncode != 0
    assert "linux.resources.cpu.cpus" in r.stderr, r.stderr
    assert not leftovers(cid), leftovers(cid)
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_unsupported_field_is_an_error_naming_it(rt, bundle_factory, container_id):
    if "net_cls" in v1_mounts():
        pytest.skip("net_cls is mounted on this host")
    cid = container_id()
    b = bundle(bundle_factory, cid, ["true"], resources={"network": {"classID": 42}})
    r = rt.create(cid, b)
    assert r.returncode != 0
    assert "linux.resources.network.classID" in r.stderr, r.stderr
    assert not leftovers(cid)


# --- limits that bite -------------------------------------------------------------------

def test_memory_limit_oom_kills(rt, bundle_factory, container_id):
    # dd reads 96 MiB from /dev/zero into one buffer: every page is touched.
    # swap == limit: no swap to escape to.
    cid = container_id()
    b = bundle(bundle_factory, cid, ["dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"],
               resources={"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    r = run_kept(rt, cid, b)
    d = cg("memory", cid)
    assert int(read(f"{d}/memory.limit_in_bytes")) == 32 * MiB
    assert r.returncode == 137, f"expected death by SIGKILL, got {r.returncode}: {r.stderr}"
    # (this kernel's v1 memory.failcnt stays 0 even at the limit: the peak and
    # the OOM-kill counter are what show the limit biting)
    assert int(read(f"{d}/memory.max_usage_in_bytes")) >= 31 * MiB
    assert flat(f"{d}/memory.oom_control")["oom_kill"] >= 1
    delete_and_check(rt, cid)


def test_pids_limit_stops_forks(rt, bundle_factory, container_id):
    cid = container_id()
    script = "for i in $(seq 16); do sleep 600 & done; exit 0"
    b = bundle(bundle_factory, cid, ["sh", "-c", script], resources={"pids": {"limit": 8}})
    r = run_kept(rt, cid, b)
    d = cg("pids", cid)
    assert read(f"{d}/pids.max") == "8"
    assert flat(f"{d}/pids.events")["max"] >= 1, r.stderr
    assert "fork" in r.stderr, r.stderr
    delete_and_check(rt, cid)


def test_cpu_quota_throttles(rt, bundle_factory, container_id):
    # the spinner is not the init: pid 1 ignores the signal `timeout` sends
    cid = container_id()
    spin = "timeout 2 sh -c 'while :; do :; done'; true"
    b = bundle(bundle_factory, cid, ["sh", "-c", spin],
               resources={"cpu": {"quota": 10000, "period": 100000, "shares": 512}})
    run_kept(rt, cid, b)
    d = cg("cpu", cid)
    assert read(f"{d}/cpu.cfs_quota_us") == "10000"
    assert read(f"{d}/cpu.shares") == "512"
    stat = flat(f"{d}/cpu.stat")
    assert stat["nr_throttled"] >= 1, stat
    delete_and_check(rt, cid)


def test_cpuset_pins(rt, bundle_factory, container_id):
    if os.cpu_count() < 2:
        pytest.skip("needs two cpus")
    cid = container_id()
    b = bundle(bundle_factory, cid, ["grep", "Cpus_allowed_list", "/proc/self/status"],
               resources={"cpu": {"cpus": "1", "mems": "0"}})
    r = run_kept(rt, cid, b)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Cpus_allowed_list:", "1"]
    assert read(f"{cg('cpuset', cid)}/cpuset.cpus") == "1"
    delete_and_check(rt, cid)


DEVICE_SCRIPT = ("echo a > /dev/null && echo null-ok; cat /dev/zero | head -c1 >/dev/zero && "
                 "echo zero-ok; echo pyrunc-v1-device-test > /dev/kmsg && echo kmsg-ok; true")
KMSG = {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600,
        "uid": 0, "gid": 0}


@pytest.mark.parametrize("rules,expect", [
    ([{"allow": False, "access": "rwm"}], {"null-ok", "zero-ok"}),
    ([{"allow": False, "access": "rwm"},
      {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}], {"zero-ok"}),
    ([{"allow": False, "access": "rwm"},
      {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}],
     {"null-ok", "zero-ok", "kmsg-ok"}),
], ids=["deny-all", "deny-null", "allow-kmsg"])
def test_device_rules(rt, bundle_factory, container_id, rules, expect):
    cid = container_id()
    b = bundle(bundle_factory, cid, ["sh", "-c", DEVICE_SCRIPT], resources={"devices": rules},
               devices=[KMSG])
    r = run_kept(rt, cid, b)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == expect, (r.stdout, r.stderr)
    if len(expect) < 3:
        assert "Operation not permitted" in r.stderr, r.stderr
    listed = read(f"{cg('devices', cid)}/devices.list").splitlines()
    assert "a *:* rwm" not in listed
    assert ("c 1:3 rwm" in listed) == ("null-ok" in expect)
    assert ("c 1:11 w" in listed) == ("kmsg-ok" in expect)
    delete_and_check(rt, cid)


def _whole_disk(dev):
    """major:minor of the disk holding a device (itself unless a partition); None if
    it is no block device (tmpfs, overlay)."""
    base = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    if not os.path.exists(base):
        return None
    if os.path.exists(f"{base}/partition"):
        base = os.path.dirname(os.path.realpath(base))
        return read(f"{base}/dev")
    return f"{os.major(dev)}:{os.minor(dev)}"


def test_blkio_throttles_a_direct_write(rt, bundle_factory, container_id, tmp_path):
    disk = _whole_disk(os.stat(tmp_path).st_dev)
    if disk is None:
        pytest.skip(f"{tmp_path} is not on a block device")
    major, minor = (int(x) for x in disk.split(":"))
    cid = container_id()
    # 2 MiB written with O_DIRECT at 512 KiB/s: about four seconds
    # /proc/uptime before and after: the time dd itself took
    script = ("cut -d' ' -f1 /proc/uptime; dd if=/dev/zero of=/ddtest bs=64k count=32 "
              "oflag=direct && cut -d' ' -f1 /proc/uptime")
    b = bundle(bundle_factory, cid, ["sh", "-c", script],
               top={"root": {"path": "rootfs", "readonly": False}},
               resources={"blockIO": {"throttleWriteBpsDevice": [
                   {"major": major, "minor": minor, "rate": 512 * 1024}]}})
    r = run_kept(rt, cid, b)
    if r.returncode != 0 and "Invalid argument" in r.stderr:
        rt.delete(cid, force=True)
        pytest.skip(f"the filesystem of {tmp_path} refuses O_DIRECT")
    assert r.returncode == 0, r.stderr
    d = cg("blkio", cid)
    assert read(f"{d}/blkio.throttle.write_bps_device") == f"{disk} {512 * 1024}"
    written = [int(line.split()[2]) for line in read(
        f"{d}/blkio.throttle.io_service_bytes_recursive").splitlines()
        if line.startswith(disk + " Write")]
    assert written and written[0] >= 2 * MiB, written
    t0, t1 = (float(x) for x in r.stdout.split())
    secs = t1 - t0
    assert secs >= 2.5, f"2 MiB at 512 KiB/s took only {secs}s: {r.stderr}"
    delete_and_check(rt, cid)


# --- commands on a running container ------------------------------------------------------

def test_pause_and_resume(rt, bundle_factory, container_id):
    cid = container_id()
    pid = start_detached(rt, cid, bundle(bundle_factory, cid, ["sleep", "600"]))
    r = rt.call("pause", cid)
    assert r.returncode == 0, r.stderr
    assert read(f"{cg('freezer', cid)}/freezer.state") == "FROZEN"
    assert rt.state_json(cid)["status"] == "paused"
    assert "T (stopped)" in read(f"/proc/{pid}/status") or \
        "D (disk sleep)" in read(f"/proc/{pid}/status")
    r = rt.call("pause", cid)
    assert r.returncode != 0 and "container not running" in r.stderr
    r = rt.call("resume", cid)
    assert r.returncode == 0, r.stderr
    assert read(f"{cg('freezer', cid)}/freezer.state") == "THAWED"
    assert rt.state_json(cid)["status"] == "running"
    r = rt.call("resume", cid)
    assert r.returncode != 0 and "container not paused" in r.stderr
    delete_and_check(rt, cid)


def test_delete_force_of_a_paused_container(rt, bundle_factory, container_id):
    cid = container_id()
    start_detached(rt, cid, bundle(bundle_factory, cid, ["sleep", "600"]))
    assert rt.call("pause", cid).returncode == 0
    delete_and_check(rt, cid)


@pytest.mark.parametrize("name", ["docker", "podman"])
def test_update_with_client_resources(rt, bundle_factory, container_id, name, tmp_path):
    with open(f"{FIXTURES}/{name}-update-resources.json") as f:
        data = f.read()
    cid = container_id()
    start_detached(rt, cid, bundle(bundle_factory, cid, ["sleep", "600"],
                                   resources={"memory": {"limit": 64 * MiB},
                                              "cpu": {"shares": 1024}}))
    if name == "docker":   # containerd's shim pipes it: --resources -
        r = subprocess.run(rt.argv("update", "--resources", "-", cid), input=data,
                           capture_output=True, text=True, timeout=30)
    else:                  # podman passes a file: --resources=FILE
        path = tmp_path / "resources.json"
        path.write_text(data)
        r = rt.call("update", f"--resources={path}", cid)
    assert r.returncode == 0, r.stderr
    d = cg("memory", cid)
    assert int(read(f"{d}/memory.limit_in_bytes")) == 128 * MiB
    assert int(read(f"{d}/memory.memsw.limit_in_bytes")) == 256 * MiB
    assert read(f"{cg('cpu', cid)}/cpu.shares") == "1024"    # 0 = unchanged
    delete_and_check(rt, cid)


def test_update_with_flags(rt, bundle_factory, container_id):
    cid = container_id()
    start_detached(rt, cid, bundle(bundle_factory, cid, ["sleep", "600"]))
    r = rt.call("update", "--memory", "48m", "--memory-swap", "96m", "--cpu-quota", "20000",
                "--cpu-period", "100000", "--pids-limit", "30", "--cpu-share", "256", cid)
    assert r.returncode == 0, r.stderr
    assert int(read(f"{cg('memory', cid)}/memory.limit_in_bytes")) == 48 * MiB
    assert int(read(f"{cg('memory', cid)}/memory.memsw.limit_in_bytes")) == 96 * MiB
    assert read(f"{cg('cpu', cid)}/cpu.cfs_quota_us") == "20000"
    assert read(f"{cg('cpu', cid)}/cpu.shares") == "256"
    assert read(f"{cg('pids', cid)}/pids.max") == "30"
    delete_and_check(rt, cid)


def test_events_stats(rt, bundle_factory, container_id):
    cid = container_id()
    start_detached(rt, cid, bundle(bundle_factory, cid, ["sleep", "600"],
                                   resources={"memory": {"limit": 64 * MiB},
                                              "pids": {"limit": 50}}))
    r = rt.call("events", "--stats", cid)
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    assert set(data) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert data["memory"]["usage"]["limit"] == 64 * MiB
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"] == {"current": 1, "limit": 50}
    assert data["cpu"]["usage"]["total"] > 0
    delete_and_check(rt, cid)


def test_events_streams_oom(rt, bundle_factory, container_id):
    cid = container_id()
    hog = "sleep 1; dd if=/dev/zero of=/dev/null bs=96M count=1; sleep 600"
    start_detached(rt, cid, bundle(bundle_factory, cid, ["sh", "-c", hog],
                                   resources={"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}))
    p = subprocess.Popen(rt.argv("events", "--interval", "300ms", cid), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            seen.append(json.loads(line))
            if seen[-1]["type"] == "oom":
                break
        assert any(e["type"] == "stats" for e in seen), seen
        assert {"type": "oom", "id": cid} in seen, (seen[-3:], p.stderr)
    finally:
        p.kill()
        p.communicate()
    delete_and_check(rt, cid)


def test_ps(rt, bundle_factory, container_id):
    cid = container_id()
    pid = start_detached(rt, cid, bundle(bundle_factory, cid, ["sleep", "600"]))
    r = rt.call("ps", "--format", "json", cid)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [pid]
    r = rt.call("ps", cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["UID", "PID"] and len(lines) == 2
    assert lines[1].split()[1] == str(pid)
    r = rt.call("ps", cid, "-o", "pid,comm")
    assert r.stdout.split() == ["PID", "COMMAND", str(pid), "sleep"], r.stdout
    delete_and_check(rt, cid)


def test_kill_all_reaches_every_process_in_the_cgroup(rt, bundle_factory, container_id,
                                                      base_config):
    """Without a pid namespace only the cgroup knows the container's processes."""
    import copy
    cid = container_id()
    config = without_namespace(copy.deepcopy(base_config), "pid")
    b = bundle_factory(config=config, args=["sh", "-c", "sleep 600 & sleep 600 & wait"],
                       config_overrides={"linux": {"cgroupsPath": f"/{cid}-p/{cid}"}})
    start_detached(rt, cid, b)
    pids_file = f"{cg('pids', cid)}/cgroup.procs"
    assert wait_for(lambda: len(read(pids_file).split()) == 3), read(pids_file)
    members = [int(p) for p in read(pids_file).split()]
    r = rt.kill(cid, "KILL", all=True)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: not read(pids_file).split(), 5), read(pids_file)
    for p in members:
        assert not os.path.exists(f"/proc/{p}") or "Z" in read(f"/proc/{p}/stat").split()[2]
    delete_and_check(rt, cid)


# --- the cgroup v2 mechanisms, on this hybrid host's unified tree ------------------------------
# The v2 controllers live in the QEMU suite (tests/cgroup2_guest); the device
# filter, cgroup.freeze and cgroup.kill need no controller and work here too.
# These call pyrunc's modules directly: there is no v2-only container here.

UNIFIED = f"{CG}/unified"
needs_unified = pytest.mark.skipif(not os.path.exists(f"{UNIFIED}/cgroup.procs"),
                                   reason="no cgroup2 tree at /sys/fs/cgroup/unified")


def _child_in(cgdir, script):
    """Fork a child that joins cgdir, then runs script(); returns (pid, read end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            with open(f"{cgdir}/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
            os.write(w, script().encode())
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


@needs_unified
def test_v2_device_filter_bites(container_id):
    import pyrunc.syscalls as sys_
    from pyrunc.executor.bpf import install
    from pyrunc.plan.devices import device_state
    d = f"{UNIFIED}/{container_id()}"
    os.mkdir(d)
    try:
        state = device_state([{"allow": False, "access": "rwm"},
                              {"allow": False, "type": "c", "major": 1, "minor": 3,
                               "access": "w"}])
        install(sys_, d, *state)
        install(sys_, d, *state)          # a second load replaces the first
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert len(sys_.bpf_prog_query(fd, sys_.C.BPF_CGROUP_DEVICE)) == 1
        finally:
            os.close(fd)

        def probe():
            out = []
            for path, mode in (("/dev/null", os.O_RDONLY), ("/dev/null", os.O_WRONLY),
                               ("/dev/zero", os.O_RDWR), ("/dev/kmsg", os.O_WRONLY)):
                try:
                    os.close(os.open(path, mode))
                    out.append("ok")
                except OSError as e:
                    out.append(e.strerror)
            return ",".join(out)
        pid, r = _child_in(d, probe)
        os.waitpid(pid, 0)
        got = os.read(r, 4096).decode().split(",")
        os.close(r)
        assert got == ["ok", "Operation not permitted", "ok", "Operation not permitted"]
    finally:
        os.rmdir(d)
    assert not os.path.exists(d)


@needs_unified
def test_v2_freeze_and_kill_through_the_manager(container_id):
    import signal
    from pyrunc.cgroups.manager import Manager
    cid = container_id()
    parent, d = f"{UNIFIED}/{cid}-p", f"{UNIFIED}/{cid}-p/{cid}"
    os.makedirs(d)
    m = Manager.from_state({"unified": d}, [parent, d])
    try:
        pid, r = _child_in(d, lambda: (time.sleep(600), "")[1])
        assert wait_for(lambda: m.pids() == [pid]), m.pids()
        m.freeze()
        assert m.is_frozen() and "frozen 1" in read(f"{d}/cgroup.events")
        m.thaw()
        assert not m.is_frozen()
        m.freeze()
        m.kill_all(signal.SIGKILL)          # cgroup.kill: frozen or not
        _, status = os.waitpid(pid, 0)
        os.close(r)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        m.thaw()
    finally:
        m.destroy()
    assert not os.path.exists(parent)
