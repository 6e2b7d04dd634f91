import sys

from pyrunc import fastjson
from pyrunc.state import Container


def main(g, a):
    c = Container(g["root"], a.args[0])
    c.load()
    sys.stdout.write(fastjson.dumps(c.oci_state(), indent=2) + "\n")
    return 0
