import json
import sys

from pyrunc.state import Container


def main(g, a):
    c = Container(g["root"], a.args[0])
    c.load()
    sys.stdout.write(json.dumps(c.oci_state(), indent=2) + "\n")
    return 0
