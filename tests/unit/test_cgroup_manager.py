"""The runtime-side Manager on fake cgroup trees (plain directories), and the
helpers of the cgroup commands (ps, update, events)."""
import json
import os
import subprocess
import sys

import pytest

from pyrunc.cgroups.manager import Manager, is_frozen
from pyrunc.cgroups.stats import MAX_U64, cpu_list
from pyrunc.commands.events import parse_duration
from pyrunc.commands.ps import filter_ps
from pyrunc.commands.update import ram_in_bytes, resources_from_flags
from pyrunc.errors import RuntimeFailure, UsageError


def tree(base, files):
    for rel, text in files.items():
        path = os.path.join(base, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def test_layout(tmp_path):
    m = Manager.from_state({"cpu": "/c/x", "cpuacct": "/c/x", "memory": "/m/x",
                            "unified": "/u/x"})
    assert not m.v2 and m.dirs() == ["/c/x", "/m/x", "/u/x"] and m.path("memory") == "/m/x"
    m2 = Manager.from_state({"unified": "/u/x"})
    assert m2.v2 and m2.path("memory") == "/u/x" and m2.path("pids") == "/u/x"
    assert not Manager.from_state({}).exists()


def test_pids_across_hierarchies_and_nested_cgroups(tmp_path):
    tree(tmp_path, {"pids/c/cgroup.procs": "10\n11\n", "pids/c/sub/cgroup.procs": "12\n",
                    "mem/c/cgroup.procs": "10\n13\n"})
    m = Manager.from_state({"pids": str(tmp_path / "pids/c"), "memory": str(tmp_path / "mem/c")})
    assert m.pids() == [10, 11, 12, 13]


def test_is_frozen(tmp_path):
    tree(tmp_path, {"f/c/freezer.state": "FROZEN\n", "u/c/cgroup.freeze": "1\n",
                    "t/c/freezer.state": "THAWED\n"})
    assert is_frozen({"freezer": str(tmp_path / "f/c"), "unified": "/nope"})
    assert not is_frozen({"freezer": str(tmp_path / "t/c")})
    assert is_frozen({"unified": str(tmp_path / "u/c")})
    assert not is_frozen({}) and not is_frozen({"freezer": "/gone"})
    # a hybrid host pauses with the v1 freezer only
    assert not is_frozen({"memory": "/m", "unified": str(tmp_path / "u/c")})


def test_destroy_removes_leaves_and_created_parents_only(tmp_path):
    for d in ("a/p/c", "a/p/c/nested", "b/p/c", "b/p/other", "keep/c"):
        os.makedirs(tmp_path / d)
    created = [str(tmp_path / p) for p in ("a/p", "a/p/c", "b/p", "b/p/c")]
    m = Manager.from_state({"x": str(tmp_path / "a/p/c"), "y": str(tmp_path / "b/p/c"),
                            "z": str(tmp_path / "keep/c"), "gone": str(tmp_path / "gone/c")},
                           created)
    m.destroy()
    assert not (tmp_path / "a/p").exists()            # ours and now empty
    assert (tmp_path / "b/p/other").exists()           # someone else's sibling keeps b/p
    assert not (tmp_path / "b/p/c").exists() and not (tmp_path / "keep/c").exists()
    assert (tmp_path / "keep").exists()                # not created by us
    m.destroy()                                         # again: already gone is fine


def test_destroy_reports_what_it_could_not_remove(tmp_path):
    tree(tmp_path, {"c/file": "x"})    # a real cgroupfs has no such files: rmdir fails
    with pytest.raises(RuntimeFailure, match="unable to remove cgroups"):
        Manager.from_state({"x": str(tmp_path / "c")}).destroy(timeout=0.05)


def test_freeze_without_freezer():
    with pytest.raises(RuntimeFailure, match="freezer"):
        Manager.from_state({"memory": "/m"}).freeze()


V1_FILES = {
    "cpuacct/cpuacct.usage": "8044758\n",
    "cpuacct/cpuacct.usage_percpu": "0 8044758 \n",
    "cpuacct/cpuacct.usage_all": "cpu user system\n0 0 0\n1 4000000 44758\n",
    "cpuacct/cpuacct.stat": "user 2\nsystem 1\n",
    "cpu/cpu.stat": "nr_periods 10\nnr_throttled 3\nthrottled_time 12345\n",
    "cpuset/cpuset.cpus": "0-1\n", "cpuset/cpuset.mems": "0\n",
    "cpuset/cpuset.sched_load_balance": "1\n", "cpuset/cpuset.sched_relax_domain_level": "-1\n",
    "memory/memory.stat": "cache 724992\nrss 53248\n",
    "memory/memory.limit_in_bytes": "67108864\n", "memory/memory.usage_in_bytes": "1220608\n",
    "memory/memory.max_usage_in_bytes": "2535424\n", "memory/memory.failcnt": "0\n",
    "memory/memory.memsw.limit_in_bytes": "9223372036854771712\n",
    "memory/memory.kmem.tcp.limit_in_bytes": "9223372036854771712\n",
    "pids/pids.current": "1\n", "pids/pids.max": "max\n",
    "blkio/blkio.bfq.io_serviced_recursive": "",
    "blkio/blkio.throttle.io_service_bytes_recursive":
        "254:0 Read 4096\n254:0 Write 2097152\n254:0 Total 2101248\nTotal 2101248\n",
    "blkio/blkio.throttle.io_serviced_recursive": "254:0 Read 1\n254:0 Write 32\nTotal 33\n",
}


def test_stats_v1_has_runcs_shape(tmp_path):
    tree(tmp_path, V1_FILES)
    keys = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices")
    s = Manager.from_state({k: str(tmp_path / k) for k in keys}).stats()
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                       "network_interfaces"]
    hz = os.sysconf("SC_CLK_TCK")
    assert s["cpu"] == {"usage": {"total": 8044758, "percpu": [0, 8044758],
                                  "percpu_kernel": [0, 44758], "percpu_user": [0, 4000000],
                                  "kernel": 10**9 // hz, "user": 2 * 10**9 // hz},
                        "throttling": {"periods": 10, "throttledPeriods": 3,
                                       "throttledTime": 12345}}
    assert s["cpuset"]["cpus"] == [0, 1] and s["cpuset"]["mems"] == [0]
    assert s["cpuset"]["sched_relax_domain_level"] == -1 and s["cpuset"]["cpu_exclusive"] == 0
    mem = s["memory"]
    assert mem["cache"] == 724992 and mem["raw"] == {"cache": 724992, "rss": 53248}
    assert mem["usage"] == {"limit": 67108864, "usage": 1220608, "max": 2535424, "failcnt": 0}
    assert mem["swap"] == {"limit": 9223372036854771712, "failcnt": 0}
    assert mem["kernelTCP"] == {"limit": 9223372036854771712, "failcnt": 0}
    assert s["pids"] == {"current": 1}                 # "max": no limit, left out like Go's 0
    assert s["blkio"] == {
        "ioServiceBytesRecursive": [{"major": 254, "op": "Read", "value": 4096},
                                    {"major": 254, "op": "Write", "value": 2097152},
                                    {"major": 254, "op": "Total", "value": 2101248}],
        "ioServicedRecursive": [{"major": 254, "op": "Read", "value": 1},
                                {"major": 254, "op": "Write", "value": 32}]}
    assert s["hugetlb"] == {} and s["intel_rdt"] == {} and s["network_interfaces"] is None
    json.dumps(s)


def test_stats_v2(tmp_path):
    tree(tmp_path, {"c/cpu.stat": "usage_usec 100\nuser_usec 60\nsystem_usec 40\n"
                                  "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
                    "c/memory.current": "1000\n", "c/memory.max": "max\n",
                    "c/memory.swap.current": "10\n", "c/memory.swap.max": "max\n",
                    "c/memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
                    "c/memory.stat": "anon 10\nfile 20\n",
                    "c/pids.current": "3\n", "c/pids.max": "100\n",
                    "c/io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
                    "c/cpuset.cpus.effective": "0-3\n", "c/cpuset.mems.effective": "0\n"})
    s = Manager.from_state({"unified": str(tmp_path / "c")}).stats()
    assert s["cpu"] == {"usage": {"total": 100000, "kernel": 40000, "user": 60000},
                        "throttling": {}}
    assert s["memory"]["usage"] == {"limit": MAX_U64, "usage": 1000, "failcnt": 4}
    assert s["memory"]["swap"] == {"limit": MAX_U64, "usage": 1010, "failcnt": 0}
    assert s["memory"]["cache"] == 20
    assert s["pids"] == {"current": 3, "limit": 100}
    assert s["blkio"]["ioServicedRecursive"] == [
        {"major": 8, "op": "Read", "value": 1}, {"major": 8, "op": "Write", "value": 2}]
    assert s["cpuset"] == {"cpus": [0, 1, 2, 3], "mems": [0]}


def test_cpu_list():
    assert cpu_list("0-2,5,7-8\n") == [0, 1, 2, 5, 7, 8] and cpu_list("") == []


def test_manager_import_is_cheap():
    code = ("import sys; import pyrunc.cgroups.manager; "
            "bad = [m for m in ('dataclasses', 'jsonschema', 'pyroute2', 'pyrunc.plan', "
            "'pyrunc._libc', 'subprocess') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# --- command helpers ------------------------------------------------------------------------

PS = """UID        PID  PPID  C STIME TTY          TIME CMD
root         1     0  0 02:00 ?        00:00:01 /sbin/init
root     28241     1  0 02:46 ?        00:00:00 sleep 100
root     28242 28241  0 02:46 ?        00:00:00 sh
"""


def test_filter_ps():
    assert filter_ps(PS, [28241]) == PS.splitlines()[0] + "\n" + PS.splitlines()[2] + "\n"
    assert filter_ps(PS, []) == PS.splitlines()[0] + "\n"
    with pytest.raises(RuntimeFailure, match="PID field"):
        filter_ps("USER COMMAND\nroot x\n", [1])


@pytest.mark.parametrize("text,want", [("1024", 1024), ("512m", 512 << 20), ("1g", 1 << 30),
                                       ("1GB", 1 << 30), ("64k", 65536), ("1.5m", 1572864),
                                       ("-1", -1), ("2 MiB", 2 << 20)])
def test_ram_in_bytes(text, want):
    assert ram_in_bytes("--memory", text) == want


def test_ram_in_bytes_refuses_garbage():
    with pytest.raises(UsageError, match="--memory"):
        ram_in_bytes("--memory", "lots")


def test_update_flags_to_resources():
    flags = {"memory": "48m", "memory_swap": "-1", "cpu_quota": "-1", "cpu_period": "100000",
             "cpu_share": "256", "cpuset_cpus": "0", "pids_limit": 30, "blkio_weight": 0}
    assert resources_from_flags(flags) == {
        "cpu": {"period": 100000, "quota": -1, "shares": 256, "cpus": "0"},
        "memory": {"limit": 48 << 20, "swap": -1}, "pids": {"limit": 30}}
    with pytest.raises(UsageError, match="--cpu-period"):
        resources_from_flags({"cpu_period": "-5"})
    with pytest.raises(UsageError, match="Intel RDT"):
        resources_from_flags({"l3_cache_schema": "L3:0=ff"})


@pytest.mark.parametrize("text,secs", [("5s", 5), ("1m30s", 90), ("250ms", 0.25), ("1h", 3600),
                                       ("1.5s", 1.5), ("0", 0), ("10us", 1e-5)])
def test_parse_duration(text, secs):
    assert parse_duration(text) == pytest.approx(secs)


@pytest.mark.parametrize("text", ["5", "s", "5x", ""])
def test_parse_duration_refuses(text):
    with pytest.raises(UsageError):
        parse_duration(text)
