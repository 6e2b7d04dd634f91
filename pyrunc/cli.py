"""Command line: runc's global flags and subcommands, parsed from a table.

Parsing follows Go's flag package as runc (urfave/cli) uses it: `-flag` and
`--flag`, `--flag=value` or `--flag value`, bool flags take `=true|false`
only, flags stop at the first positional argument.  Each command's module is
imported only when that command runs, so `pyrunc state` pays for nothing else.

state, start, kill and delete, which a shim runs for every container, are the
few lines at the end of this file instead: a module in pyrunc/commands/ (and
the package) would cost each of those calls ~0.12 ms to import.
"""
import posix   # not os: see pyrunc/state.py
import sys

from pyrunc.errors import PyruncError, UsageError

VERSION = "0.1.0"
SPEC_VERSION = "1.2.0"

B, S, I, L = "bool", "str", "int", "list"   # flag kinds; L collects repeated values

GLOBAL_FLAGS = {
    "root": S, "log": S, "log-format": S, "debug": B, "systemd-cgroup": B,
    "criu": S, "rootless": S, "version": B, "v": B, "help": B, "h": B,
    "trace": S, "faults": S, "faults-from-annotations": B,
}
# what turns on pyrunc.trace / pyrunc.faults (off: neither is imported)
INSTRUMENT_ENV = (b"PYRUNC_TRACE", b"PYRUNC_FAULTS", b"PYRUNC_FAULTS_FROM_ANNOTATIONS")
INSTRUMENT_FLAGS = ("trace", "faults", "faults-from-annotations")

# command -> (module in pyrunc/commands/, or None for the hot commands at the end
# of this file, {flag: kind}, {alias: flag}, min positionals, max positionals or None)
COMMANDS = {
    "create": ("create", {"bundle": S, "pid-file": S, "console-socket": S, "no-pivot": B,
                          "no-new-keyring": B, "preserve-fds": I, "pidfd-socket": S},
               {"b": "bundle"}, 1, 1),
    "run": ("run", {"bundle": S, "pid-file": S, "console-socket": S, "no-pivot": B,
                    "no-new-keyring": B, "preserve-fds": I, "detach": B, "keep": B,
                    "no-subreaper": B, "pidfd-socket": S},
            {"b": "bundle", "d": "detach"}, 1, 1),
    "start": (None, {}, {}, 1, 1),
    "state": (None, {}, {}, 1, 1),
    "kill": (None, {"all": B}, {"a": "all"}, 1, 2),
    "delete": (None, {"force": B}, {"f": "force"}, 1, 1),
    "list": ("list", {"format": S, "quiet": B}, {"f": "format", "q": "quiet"}, 0, 0),
    "spec": ("spec", {"bundle": S, "rootless": B}, {"b": "bundle"}, 0, 0),
    "exec": ("exec", {"console-socket": S, "pidfd-socket": S, "cwd": S, "env": L, "tty": B,
                      "user": S, "additional-gids": L, "process": S, "detach": B,
                      "pid-file": S, "process-label": S, "apparmor": S, "no-new-privs": B,
                      "cap": L, "preserve-fds": I, "cgroup": L, "ignore-paused": B},
             {"e": "env", "t": "tty", "u": "user", "g": "additional-gids", "p": "process",
              "d": "detach", "c": "cap"}, 1, None),
    "plan": ("plan", {"bundle": S, "format": S, "no-pivot": B, "no-new-keyring": B,
                      "preserve-fds": I}, {"b": "bundle", "f": "format"}, 0, 1),
    "features": ("features", {}, {}, 0, 0),
    "pause": ("pause", {}, {}, 1, 1),
    "resume": ("resume", {}, {}, 1, 1),
    "ps": ("ps", {"format": S}, {"f": "format"}, 1, None),
    "events": ("events", {"interval": S, "stats": B}, {}, 1, 1),
    "update": ("update", {"resources": S, "blkio-weight": I, "cpu-period": S, "cpu-quota": S,
                          "cpu-share": S, "cpu-rt-period": S, "cpu-rt-runtime": S,
                          "cpuset-cpus": S, "cpuset-mems": S, "memory": S,
                          "memory-reservation": S, "memory-swap": S, "pids-limit": I,
                          "l3-cache-schema": S, "mem-bw-schema": S},
               {"r": "resources", "cpu-shares": "cpu-share"}, 1, 1),
    "demo": ("demo", {}, {}, 0, 1),
    "trace": ("trace", {"format": S, "id": S, "command": S}, {"f": "format"}, 1, 1),
}

USAGE = """usage: pyrunc [global options] command [command options] [arguments...]

pyrunc is a low-level OCI container runtime, a drop-in for runc.

commands:
  create   create a container          start    start a created container
  run      create and run a container  state    output the state of a container
  kill     send a signal to the init   delete   delete a container
  list     list containers             spec     create a new specification file
  exec     run a process in a container
  features what this build and host support (JSON)
  plan     show the steps pyrunc would take for a bundle, without running them
  demo     run the built-in busybox demo bundle
  trace    show a --trace file as a table or JSON

global options:
  --root DIR            state directory (default /run/pyrunc)
  --log FILE            log file (default: stderr only)
  --log-format text|json
  --debug               debug logging
  --systemd-cgroup      use systemd for cgroups
  --version, -v         print the version
  --trace FILE          append one JSON line per invocation (also PYRUNC_TRACE)
  --faults FILE         inject the faults FILE describes (also PYRUNC_FAULTS)
  --faults-from-annotations  also take fault rules from org.pyrunc.fault.* annotations
"""


class Args:
    """Parsed command line: .flags (dashes -> underscores), .args (positionals)."""

    def __init__(self, flags, args):
        self.flags = flags
        self.args = args

    def __getattr__(self, name):
        try:
            return self.flags[name]
        except KeyError:
            raise AttributeError(name) from None


def _parse_flags(argv, table, aliases, stop_at_positional=True):
    flags, rest, i = {}, [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i + 1:])
            break
        if not a.startswith("-") or a == "-":
            if stop_at_positional:
                rest.extend(argv[i:])
                break
            rest.append(a)
            i += 1
            continue
        name, eq, value = a.lstrip("-").partition("=")
        name = aliases.get(name, name)
        kind = table.get(name)
        if kind is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if kind == B:
            if eq and value not in ("true", "false", "1", "0"):
                raise UsageError(f'invalid boolean value "{value}" for -{name}')
            flags[name] = (value in ("true", "1")) if eq else True
        else:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
            if kind == I:
                try:
                    value = int(value)
                except ValueError:
                    raise UsageError(f'invalid value "{value}" for flag -{name}') from None
            if kind == L:
                flags.setdefault(name, []).append(value)
            else:
                flags[name] = value
        i += 1
    return {k.replace("-", "_"): v for k, v in flags.items()}, rest


def parse(argv):
    gflags, rest = _parse_flags(argv, GLOBAL_FLAGS, {})
    if gflags.get("version") or gflags.get("v"):
        return gflags, "version", None
    if not rest or gflags.get("help") or gflags.get("h") or rest[0] in ("help", "--help"):
        return gflags, "help", None
    cmd = rest[0]
    if cmd not in COMMANDS:
        raise UsageError(f"No help topic for '{cmd}'")
    _, table, aliases, lo, hi = COMMANDS[cmd]
    cflags, positionals = _parse_flags(rest[1:], table, aliases)
    if len(positionals) < lo:
        raise UsageError(f'"{cmd}" requires a minimum of {lo} argument(s)' if lo > 1 else
                         f'"{cmd}" requires exactly 1 argument(s)' if hi == 1 else
                         f'"{cmd}" requires a minimum of {lo} argument(s)')
    if hi is not None and len(positionals) > hi:
        raise UsageError(f'"{cmd}" requires a maximum of {hi} argument(s)' if hi != 1 else
                         f'"{cmd}" requires exactly 1 argument(s)')
    return gflags, cmd, Args(cflags, positionals)


_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def rootless_flag(g):
    """--rootless true|false|auto as runc reads it: None (auto) means detect."""
    value = g.get("rootless")
    if value is None or value.lower() in ("", "auto"):
        return None
    if value not in _GO_BOOLS:
        raise UsageError(f'invalid --rootless value "{value}": want true, false or auto')
    return _GO_BOOLS[value]


def _instrumented(argv):
    """--trace/--faults/PYRUNC_TRACE/...: a few dict lookups and a scan of the global flags."""
    env = posix.environ   # os.environ's bytes underneath, without importing os
    if any(env.get(name) for name in INSTRUMENT_ENV):
        return True
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        name, eq, _ = argv[i].lstrip("-").partition("=")
        if name in INSTRUMENT_FLAGS:
            return True
        i += 1 if eq or GLOBAL_FLAGS.get(name) == B else 2
    return False


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if _instrumented(argv):
        from pyrunc.trace import instrumented_main
        return instrumented_main(_main, argv)
    return _main(argv)


def _main(argv):
    from pyrunc.log import log
    try:
        # the log first: containerd shows only the log, usage errors included
        try:
            early, _ = _parse_flags(argv, GLOBAL_FLAGS, {})
            log.configure(early.get("log"), early.get("log_format", "text"),
                          early.get("debug", False))
        except UsageError:
            pass
        gflags, cmd, args = parse(argv)
        if gflags.get("log_format", "text") not in ("text", "json"):
            raise UsageError(f"invalid log-format: {gflags['log_format']}")
        if cmd == "version":
            sys.stdout.write(f"pyrunc version {VERSION}\nspec: {SPEC_VERSION}\n"
                             f"python: {sys.version.split()[0]}\n")
            return 0
        if cmd == "help":
            sys.stdout.write(USAGE)
            return 0
        from pyrunc.state import default_root
        gflags.setdefault("root", default_root())
        name = COMMANDS[cmd][0]
        if name is None:
            return HOT[cmd](gflags, args)
        # __import__, not importlib.import_module: importlib costs an import of its own
        module = __import__("pyrunc.commands." + name, fromlist=["main"])
        return module.main(gflags, args) or 0
    except PyruncError as e:
        log.error(str(e))
        return e.exit_code
    except OSError as e:
        # an OS error nobody turned into a PyruncError: still one line, no traceback
        from pyrunc.errors import oserror_text
        log.error(f"{e.filename + ': ' if e.filename else ''}{oserror_text(e)}")
        return 1
    except KeyboardInterrupt:
        return 130


# --- the hot commands: main(global flags, Args) -> exit code, as in pyrunc/commands/

def _state(g, a):
    from pyrunc import fastjson
    from pyrunc.state import Container
    c = Container(g["root"], a.args[0])
    c.load()
    sys.stdout.write(fastjson.dumps(c.oci_state(), indent=2) + "\n")
    return 0


def _start(g, a):
    from pyrunc.lifecycle import start
    start(g["root"], a.args[0])
    return 0


def _kill(g, a):
    from pyrunc.lifecycle import kill
    from pyrunc.procs import parse_signal
    sig = parse_signal(a.args[1]) if len(a.args) > 1 else 15
    kill(g["root"], a.args[0], sig, all_procs=a.flags.get("all", False))
    return 0


def _delete(g, a):
    from pyrunc.lifecycle import delete
    delete(g["root"], a.args[0], force=a.flags.get("force", False))
    return 0


HOT = {"state": _state, "start": _start, "kill": _kill, "delete": _delete}


def main_and_exit(argv=None):
    """The installed launcher's entry (pyrunc/launcher.py): main(), then exit
    without the interpreter's teardown, which would only free what the
    process is about to drop anyway (~1.5 ms after a create).  Every file
    pyrunc writes is closed where it is written; stdio buffers are flushed here."""
    code = main(argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        sys.exit(code)   # let the interpreter report it, and exit, as it always did
    posix._exit(code or 0)


if __name__ == "__main__":
    sys.exit(main())
