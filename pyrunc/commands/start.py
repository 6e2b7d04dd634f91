from pyrunc.lifecycle import start


def main(g, a):
    start(g["root"], a.args[0])
    return 0
