"""linux.netDevices: move host interfaces into the container's network namespace.

Runs in pyrunc create (the runtime's namespaces), once the container's network
namespace exists and before the prestart/createRuntime hooks.  One netlink
request from the host side moves and renames the device (the kernel applies
the new name, or its "%d" template, in the target namespace and refuses one
already taken there); the rest happens on a netlink socket opened inside the
container's namespace by a short-lived thread that setns()es itself alone
(network namespaces are per thread), so pyrunc create never leaves its own.

Moving a device flushes its addresses: the permanent ones of global scope are
read first and added back, as runtime-spec asks, then the device is set up.
Nothing is moved back on delete (runtime-spec: the kernel returns physical
devices when the namespace dies; virtual ones die with it).

pyroute2 costs ~100 ms of imports: it is imported inside the handler only.
"""
import os

from pyrunc.errors import ConfigError, RuntimeFailure
from pyrunc.executor.base import handles
from pyrunc.plan.process import go_quote
from pyrunc.plan.steps import MoveNetDevice

IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0
# address flags worth carrying over; the rest the kernel sets itself
# (permanent, tentative, deprecated, dadfailed, secondary)
_KEPT_IFA_FLAGS = 0x02 | 0x10 | 0x100 | 0x200 | 0x400   # nodad homeaddress
#                                                         mngtmpaddr noprefixroute autojoin


@handles(MoveNetDevice)
def move_net_device(step, ctx):
    path = f"/proc/{ctx.extra['init_pid']}/ns/net"
    try:
        nsfd = ctx.sys.open(path, os.O_RDONLY)
    except OSError as e:
        raise RuntimeFailure(f"linux.netDevices: open {path}: {_text(e.errno)}") from None
    try:
        move(step.host_name, step.name, nsfd, ctx.sys)
    finally:
        ctx.sys.close(nsfd)


def move(host_name, name, nsfd, sys):
    """Move host_name into the namespace of nsfd as `name`; addresses kept, link up."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    where = _where(host_name)
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=host_name)
        if not found:
            raise ConfigError(where, f"network device {go_quote(host_name)} not found on the "
                              "host: no such device")
        index = found[0]
        addrs = [a for a in (_address(m) for m in ipr.get_addr(index=index)) if a]
        before = in_netns(nsfd, sys, lambda ns: {link["index"]: link.get_attr("IFLA_IFNAME")
                                                 for link in ns.get_links()})
        # The kernel checks the name too, but only after the move: the device
        # would be left in the container under its host name.
        if "%d" not in name and name in before.values():
            raise RuntimeFailure(f"{where}: cannot move {go_quote(host_name)} into the "
                                 f"container as {go_quote(name)}: a device of that name "
                                 "already exists there")
        try:
            ipr.link("set", index=index, net_ns_fd=nsfd, ifname=name)
        except NetlinkError as e:
            raise RuntimeFailure(f"{where}: cannot move {go_quote(host_name)} into the "
                                 f"container as {go_quote(name)}: {_text(e.code)}") from None

    def finish(ns):
        moved = [link for link in ns.get_links() if link["index"] not in before]
        if len(moved) != 1 and "%d" not in name:
            moved = [link for link in ns.get_links() if link.get_attr("IFLA_IFNAME") == name]
        if len(moved) != 1:
            raise RuntimeFailure(f"{where}: moved {go_quote(host_name)} but cannot find it in "
                                 "the container's network namespace")
        new = moved[0]["index"]
        try:
            for a in addrs:
                ns.addr("add", index=new, **a)
            ns.link("set", index=new, state="up")
        except NetlinkError as e:
            raise RuntimeFailure(f"{where}: setting up {go_quote(host_name)} in the container: "
                                 f"{_text(e.code)}") from None
        return moved[0].get_attr("IFLA_IFNAME")
    return in_netns(nsfd, sys, finish)


def _address(msg):
    """pyroute2 kwargs to re-add an address msg, or None if it is not to be kept."""
    flags = msg.get_attr("IFA_FLAGS")
    if flags is None:
        flags = msg["flags"]
    if not flags & IFA_F_PERMANENT or msg["scope"] != RT_SCOPE_UNIVERSE:
        return None
    out = {"family": msg["family"], "prefixlen": msg["prefixlen"],
           "address": msg.get_attr("IFA_ADDRESS")}
    local, broadcast = msg.get_attr("IFA_LOCAL"), msg.get_attr("IFA_BROADCAST")
    if local:
        out["local"] = local
    if broadcast:
        out["broadcast"] = broadcast
    if flags & _KEPT_IFA_FLAGS:
        out["IFA_FLAGS"] = flags & _KEPT_IFA_FLAGS
    return out


def in_netns(nsfd, sys, fn):
    """fn(IPRoute) on a netlink socket inside the namespace of nsfd; its result.

    A thread of our own joins the namespace, so the main thread stays in ours.
    """
    import threading
    from pyroute2 import IPRoute
    box = {}

    def run():
        try:
            sys.setns(nsfd, sys.C.CLONE_NEWNET)
            with IPRoute() as ns:
                box["result"] = fn(ns)
        except BaseException as e:  # noqa: B902 - handed to the caller's thread
            box["error"] = e

    t = threading.Thread(target=run, name="pyrunc-netns")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _where(host_name):
    from pyrunc.spec.validate import json_path
    return json_path(["linux", "netDevices", host_name])


def _text(code):
    text = os.strerror(code) if code else "unknown error"
    return text[0].lower() + text[1:]
