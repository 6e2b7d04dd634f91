from pyrunc.lifecycle import kill
from pyrunc.procs import parse_signal


def main(g, a):
    sig = parse_signal(a.args[1]) if len(a.args) > 1 else 15
    kill(g["root"], a.args[0], sig, all_procs=a.flags.get("all", False))
    return 0
