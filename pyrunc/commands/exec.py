from pyrunc.errors import UsageError
from pyrunc.exec_into import exec_into, process_from_flags


def main(g, a):
    cid, args = a.args[0], a.args[1:]
    f = a.flags
    if f.get("process"):
        if args:
            raise UsageError("exec: --process and a command line are mutually exclusive")
        from pyrunc.spec.loader import load_process
        process = load_process(f["process"])
        if f.get("tty"):
            from pyrunc.record import replace
            process = replace(process, terminal=True)
    else:
        from pyrunc.state import Container
        base = Container(g["root"], cid).state.config.get("process")
        process = process_from_flags(base, args, f)
    return exec_into(g["root"], cid, process, detach=f.get("detach", False),
                     pid_file=f.get("pid_file"), console_socket=f.get("console_socket"),
                     preserve_fds=f.get("preserve_fds", 0),
                     ignore_paused=f.get("ignore_paused", False))
