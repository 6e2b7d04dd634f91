from pyrunc.plan.namespaces import plan_namespaces
from pyrunc.plan.steps import (CreateNamespaces, CreateUserNamespace, ForkInit, JoinNamespace,
                               SetTimeOffsets)
from pyrunc.spec.config import Config


def cfg(namespaces, **linux):
    return Config.from_dict({"ociVersion": "1.2.0", "root": {"path": "rootfs"},
                             "linux": {"namespaces": namespaces, **linux}}, "/b")


def test_new_namespaces_one_unshare_then_fork():
    steps = plan_namespaces(cfg([{"type": "pid"}, {"type": "mount"}, {"type": "network"}]))
    assert steps == [CreateNamespaces(("network", "pid", "mount")), ForkInit()]


def test_joined_user_namespace_comes_first():
    steps = plan_namespaces(cfg([{"type": "network", "path": "/proc/1/ns/net"},
                                 {"type": "user", "path": "/proc/1/ns/user"},
                                 {"type": "mount"}]))
    assert steps == [JoinNamespace("user", "/proc/1/ns/user"),
                     JoinNamespace("network", "/proc/1/ns/net"),
                     CreateNamespaces(("mount",))]


def test_new_user_namespace_and_time_offsets():
    c = cfg([{"type": "user"}, {"type": "time"}, {"type": "pid"}],
            uidMappings=[{"containerID": 0, "hostID": 1000, "size": 10}],
            gidMappings=[{"containerID": 0, "hostID": 1000, "size": 10}],
            timeOffsets={"monotonic": {"secs": 5, "nanosecs": 1}})
    steps = plan_namespaces(c)
    assert isinstance(steps[0], CreateUserNamespace)
    assert steps[0].uid_mappings[0].host_id == 1000
    assert steps[1] == CreateNamespaces(("pid", "time"))
    assert steps[2] == SetTimeOffsets((("monotonic", 5, 1),))
    assert steps[3] == ForkInit()


def test_no_pid_namespace_no_fork():
    assert ForkInit() not in plan_namespaces(cfg([{"type": "mount"}]))
