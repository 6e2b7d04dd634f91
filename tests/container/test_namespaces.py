"""Namespaces of a real pyrunc container, seen from inside and from the host."""
import json
import os

import pytest

from tests.container.realkit import (make_searchable, ns_link, wait_for, wait_status,
                                     without_namespace)

NS_FILES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
            "cgroup": "cgroup", "time": "time", "user": "user"}

# prints "key value" lines; /proc/$$ is the process the runtime exec'd
REPORT = r"""
echo "pid $$"
for n in net mnt ipc uts cgroup pid time user; do echo "ns_$n $(readlink /proc/$$/ns/$n)"; done
echo "links $(ls /sys/class/net | tr '\n' ' ')"
echo "lo_flags $(cat /sys/class/net/lo/flags)"
echo "hostname $(hostname)"
echo "uptime $(cut -d' ' -f1 /proc/uptime)"
echo "uid_map $(cat /proc/$$/uid_map | tr -s ' ' | tr '\n' ';')"
echo "id $(id -u):$(id -g)"
"""


@pytest.fixture
def rt(pyrunc, make_runtime):
    return make_runtime(pyrunc, name="pyrunc")


def _config(base, namespaces, **linux):
    c = json.loads(json.dumps(base))
    c["linux"]["namespaces"] = [{"type": t} for t in namespaces]
    c["linux"].update(linux)
    return c


def _report(rt, cid, bundle):
    r = rt.run(cid, bundle)
    assert r.returncode == 0, r.stderr
    return dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)


def _host_uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


ALL_BUT_USER = ("pid", "network", "ipc", "uts", "mount", "cgroup")


def test_new_namespaces(rt, bundle_factory, base_config, container_id):
    config = _config(base_config, ALL_BUT_USER)
    config["hostname"] = "ns-test"
    bundle = bundle_factory(config=config, args=["sh", "-c", REPORT])
    rep = _report(rt, container_id(), bundle)
    assert rep["pid"] == "1"
    for ns in ("net", "mnt", "ipc", "uts", "cgroup", "pid"):
        assert rep[f"ns_{ns}"] != ns_link("self", ns), f"{ns} namespace not new"
    for ns in ("user", "time"):
        assert rep[f"ns_{ns}"] == ns_link("self", ns), f"{ns} namespace should be the host's"
    assert rep["links"].split() == ["lo"]
    assert int(rep["lo_flags"], 16) & 1, "lo must be UP (IFF_UP)"
    assert rep["hostname"] == "ns-test"


def test_host_namespaces_when_not_asked(rt, bundle_factory, base_config, container_id):
    """Only the mount namespace: network, uts, ipc stay the host's."""
    config = _config(base_config, ("mount",))
    config.pop("hostname", None)
    bundle = bundle_factory(config=config, args=["sh", "-c", REPORT])
    rep = _report(rt, container_id(), bundle)
    for ns in ("net", "ipc", "uts", "pid", "cgroup"):
        assert rep[f"ns_{ns}"] == ns_link("self", ns), ns
    assert rep["ns_mnt"] != ns_link("self", "mnt")
    assert rep["pid"] != "1"


def test_user_namespace_mappings(rt, bundle_factory, base_config, container_id, tmp_path):
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config = _config(base_config, ALL_BUT_USER + ("user",), uidMappings=maps, gidMappings=maps)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    (shared / "hostfile").write_text("host\n")
    config["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                             "options": ["rbind", "rw"]})
    args = ["sh", "-c", REPORT + 'echo "owner $(stat -c %u:%g /shared/hostfile)"; '
                                 'touch /shared/made']
    bundle = bundle_factory(config=config, args=args, files={"shared/.keep": ""})
    make_searchable(bundle.rootfs)
    rep = _report(rt, container_id(), bundle)
    assert rep["ns_user"] != ns_link("self", "user")
    assert rep["uid_map"].split(";")[0].split() == ["0", "100000", "65536"]
    assert rep["id"] == "0:0"
    # host root is not mapped: its files show as the overflow ids inside
    assert rep["owner"] == "65534:65534"
    st = os.stat(shared / "made")
    assert (st.st_uid, st.st_gid) == (100000, 100000), "container root must be host 100000"


def test_time_namespace_offsets(rt, bundle_factory, base_config, container_id):
    offsets = {"boottime": {"secs": 86400 * 10, "nanosecs": 0}, "monotonic": {"secs": 3600}}
    config = _config(base_config, ALL_BUT_USER + ("time",), timeOffsets=offsets)
    bundle = bundle_factory(config=config, args=["sh", "-c", REPORT])
    before = _host_uptime()
    rep = _report(rt, container_id(), bundle)
    after = _host_uptime()
    assert rep["ns_time"] != ns_link("self", "time")
    up = float(rep["uptime"])
    assert before + 864000 <= up <= after + 864000, (before, up, after)


def test_join_namespaces_by_path(rt, bundle_factory, base_config, container_id):
    """A pod: the second container joins the first's net and uts by /proc path."""
    config = _config(base_config, ("pid", "network", "ipc", "uts", "mount"))
    config["hostname"] = "pod-host"
    sandbox = bundle_factory(config=config, args=["sleep", "30"])
    pause = container_id()
    assert rt.run(pause, sandbox, "-d").returncode == 0
    try:
        pid = rt.state_json(pause)["pid"]
        joiner = _config(base_config, ("pid", "ipc", "mount"))
        joiner["linux"]["namespaces"] += [
            {"type": "network", "path": f"/proc/{pid}/ns/net"},
            {"type": "uts", "path": f"/proc/{pid}/ns/uts"}]
        joiner.pop("hostname", None)
        bundle = bundle_factory(config=joiner, args=["sh", "-c", REPORT])
        rep = _report(rt, container_id(), bundle)
        assert rep["ns_net"] == ns_link(pid, "net") != ns_link("self", "net")
        assert rep["ns_uts"] == ns_link(pid, "uts") != ns_link("self", "uts")
        assert rep["ns_ipc"] != ns_link(pid, "ipc")
        assert rep["hostname"] == "pod-host"
    finally:
        assert rt.delete(pause, force=True).returncode == 0


def test_join_missing_namespace_path_fails(rt, bundle_factory, base_config, container_id):
    config = without_namespace(json.loads(json.dumps(base_config)), "network")
    config["linux"]["namespaces"].append({"type": "network", "path": "/proc/999999999/ns/net"})
    bundle = bundle_factory(config=config, args=["true"])
    cid = container_id()
    r = rt.create(cid, bundle)
    assert r.returncode == 1 and "no such file or directory" in r.stderr
    assert rt.state(cid).returncode == 1


@pytest.mark.parametrize("how", ["kill --all", "delete --force"])
def test_no_pid_namespace_children_are_reached(rt, bundle_factory, base_config, container_id,
                                               how):
    """Without its own pid namespace the init's children are found all the same
    (runc finds them in the container's cgroup)."""
    config = without_namespace(json.loads(json.dumps(base_config)), "pid")
    bundle = bundle_factory(config=config, args=["sh", "-c", "sleep 31 & sleep 31 & wait"])
    cid = container_id()
    assert rt.run(cid, bundle, "-d").returncode == 0
    pid = rt.state_json(cid)["pid"]
    assert wait_for(lambda: len(_children(pid)) == 2), _children(pid)
    kids = _children(pid)
    try:
        if how == "kill --all":
            assert rt.kill(cid, "KILL", all=True).returncode == 0
            wait_status(rt, cid, "stopped")
        else:
            assert rt.delete(cid, force=True).returncode == 0
        assert wait_for(lambda: not any(_alive(k) for k in kids), 2.0), \
            f"{how} left the init's children {kids} running"
    finally:
        for k in kids:   # not descendants of pytest: the leak check would miss them
            if _alive(k):
                os.kill(k, 9)
        rt.delete(cid, force=True)


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
