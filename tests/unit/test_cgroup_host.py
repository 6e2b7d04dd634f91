"""The host probe's parsing, and the fake hosts the other cgroup unit tests
use (hybrid(), legacy(), v2()), described as the texts probe() reads."""
import pytest

from pyrunc.cgroups.host import build, hugepage_size_name, join_under, parse_proc_cgroup

# this project's build host: v1 hierarchies one per controller, a cgroup2
# "unified" tree beside them, and our memory cgroup below /process_api/<hash>
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = """\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/0b9c
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
"""

# a classic legacy host: cpu,cpuacct and net_cls,net_prio co-mounted, hugetlb
# and rdma there, our cgroups below a systemd session
LEGACY_MOUNTINFO = """\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,devices
33 25 0:30 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,hugetlb
34 25 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
35 25 0:32 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,cpuset
36 25 0:33 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,blkio
37 25 0:34 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:21 - cgroup cgroup rw,freezer
38 25 0:35 / /sys/fs/cgroup/rdma rw,nosuid,nodev,noexec,relatime shared:22 - cgroup cgroup rw,rdma
39 25 0:36 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:23 - cgroup cgroup rw,perf_event
"""
LEGACY_CGROUP = """\
12:rdma:/
11:freezer:/
10:blkio:/user.slice
9:cpuset:/
8:pids:/user.slice/user-0.slice/session-1.scope
7:hugetlb:/
6:devices:/user.slice
5:memory:/user.slice/user-0.slice/session-1.scope
4:net_cls,net_prio:/
3:cpu,cpuacct:/user.slice
2:perf_event:/
1:name=systemd:/user.slice/user-0.slice/session-1.scope
"""

V2_MOUNTINFO = """\
25 18 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""
V2_CGROUP = "0::/user.slice/user-0.slice/session-1.scope\n"
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")

# inside a container with its own cgroup namespace and a bind of its cgroup
V2_NS_MOUNTINFO = """\
300 290 0:22 /kubepods/pod1 /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
"""
V2_NS_CGROUP = "0::/kubepods/pod1/ctr\n"


def hybrid(**kw):
    kw.setdefault("hugepage_sizes", ("2MB", "1GB"))
    return build(HYBRID_MOUNTINFO, HYBRID_CGROUP, v2_controllers=("hugetlb",), **kw)


def legacy(**kw):
    kw.setdefault("hugepage_sizes", ("2MB", "1GB"))
    return build(LEGACY_MOUNTINFO, LEGACY_CGROUP, **kw)


def v2(**kw):
    kw.setdefault("hugepage_sizes", ("2MB", "1GB"))
    kw.setdefault("v2_controllers", V2_CONTROLLERS)
    return build(V2_MOUNTINFO, V2_CGROUP, **kw)


# --- the probe's parsing ---------------------------------------------------------------


def test_hybrid_host():
    h = hybrid()
    assert not h.unified
    assert [x.controllers for x in h.v1] == [("cpu",), ("cpuacct",), ("cpuset",), ("memory",),
                                             ("devices",), ("freezer",), ("blkio",), ("pids",),
                                             ("name=systemd",)]
    assert h.hierarchy("memory").own_dir() == "/sys/fs/cgroup/memory/process_api/0b9c"
    assert h.hierarchy("cpu").own_dir() == "/sys/fs/cgroup/cpu"
    assert h.v2_mount == "/sys/fs/cgroup/unified" and h.v2_own_dir() == "/sys/fs/cgroup/unified"
    assert h.hierarchy("hugetlb") is None


def test_legacy_host_co_mounted_and_unknown_named_hierarchies():
    h = legacy()
    assert h.v2_mount is None
    cpu = h.hierarchy("cpuacct")
    assert cpu is h.hierarchy("cpu") and cpu.controllers == ("cpu", "cpuacct")
    assert cpu.mountpoint == "/sys/fs/cgroup/cpu,cpuacct"
    assert cpu.own_dir() == "/sys/fs/cgroup/cpu,cpuacct/user.slice"
    assert h.hierarchy("net_prio").controllers == ("net_cls", "net_prio")
    assert h.hierarchy("name=systemd").own == "/user.slice/user-0.slice/session-1.scope"


def test_v2_host():
    h = v2()
    assert h.unified and h.v1 == ()
    assert h.v2_own_dir() == "/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope"
    assert "memory" in h.v2_controllers


def test_v2_in_a_cgroup_namespace_maps_through_the_mount_root():
    h = build(V2_NS_MOUNTINFO, V2_NS_CGROUP)
    assert h.v2_own_dir() == "/sys/fs/cgroup/ctr"


def test_mountinfo_escapes_and_unknown_hierarchy():
    text = ("50 31 0:40 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,name=custom\n"
            "51 31 0:41 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    h = build(text, "2:name=custom:/\n1:memory:/a b\n")
    assert [x.controllers for x in h.v1] == [("memory",)]   # name=custom is not runc's
    assert h.hierarchy("memory").own_dir() == "/sys/fs/cgroup/memory/a b"


def test_parse_proc_cgroup():
    assert parse_proc_cgroup("3:cpu,cpuacct:/x\n0::/y\n") == {"cpu": "/x", "cpuacct": "/x",
                                                              "": "/y"}


@pytest.mark.parametrize("name,size", [("hugepages-2048kB", "2MB"),
                                       ("hugepages-1048576kB", "1GB"),
                                       ("hugepages-64kB", "64KB"),
                                       ("hugepages-32768kB", "32MB")])
def test_hugepage_size_names(name, size):
    assert hugepage_size_name(name) == size


@pytest.mark.parametrize("base,path,want", [("/a", "b/c", "/a/b/c"), ("/a", "/b", "/a/b"),
                                             ("/a", "../../b", "/a/b"), ("/a", "/", "/a")])
def test_join_under_never_climbs_out(base, path, want):
    assert join_under(base, path) == want
