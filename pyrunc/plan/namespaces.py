"""Namespace steps: which namespaces the container joins, which it creates, in what order."""
from pyrunc.plan.steps import (CreateNamespaces, CreateUserNamespace, ForkInit, JoinNamespace,
                               SetTimeOffsets)

# The order unshare/setns happen in.  A joined user namespace comes first: it
# owns the namespaces joined after it and gives us the privilege to join them.
ORDER = ("user", "ipc", "uts", "network", "pid", "mount", "cgroup", "time")


def plan_namespaces(config):
    linux = config.linux
    by_type = {ns.type: ns for ns in linux.namespaces}
    steps = []
    for t in ORDER:
        ns = by_type.get(t)
        if ns is not None and ns.path:
            steps.append(JoinNamespace(t, ns.path))
    if "user" in by_type and not by_type["user"].path:
        steps.append(CreateUserNamespace(linux.uid_mappings, linux.gid_mappings))
    new = tuple(t for t in ORDER if t in by_type and t != "user" and not by_type[t].path)
    if new:
        steps.append(CreateNamespaces(new))
    if "time" in new and linux.time_offsets:
        steps.append(SetTimeOffsets(tuple((clock, secs, nsecs) for clock, (secs, nsecs)
                                          in sorted(linux.time_offsets.items()))))
    if "pid" in by_type:
        steps.append(ForkInit())
    return steps


def creates(config, ns_type):
    ns = config.linux.namespace(ns_type)
    return ns is not None and not ns.path
