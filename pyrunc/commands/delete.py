from pyrunc.lifecycle import delete


def main(g, a):
    delete(g["root"], a.args[0], force=a.flags.get("force", False))
    return 0
