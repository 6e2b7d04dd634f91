import posix

from pyrunc.cli import rootless_flag
from pyrunc.lifecycle import create


def main(g, a):
    create(g["root"], a.args[0], a.flags.get("bundle") or posix.getcwd(),
           pid_file=a.flags.get("pid_file"), console_socket=a.flags.get("console_socket"),
           no_pivot=a.flags.get("no_pivot", False), preserve_fds=a.flags.get("preserve_fds", 0),
           no_new_keyring=a.flags.get("no_new_keyring", False),
           systemd_cgroup=g.get("systemd_cgroup", False), rootless=rootless_flag(g))
    return 0
