"""Read, check and type the JSON files a runtime is handed.

    load_bundle(bundle_dir)         -> Config   (<bundle>/config.json, for create/run)
    load_process(path_or_dash)      -> Process  (exec --process FILE, "-" = stdin)
    load_resources(path_or_dash)    -> dict     (update --resources FILE, "-" = stdin)

Each goes: read -> parse JSON -> schema (pyrunc.spec.validate) -> semantic rules
(pyrunc.spec.semantic) -> typed dataclass.  Every failure is a ConfigError with
a one-line message; file errors use the OS wording ("no such file or
directory") that docker and podman map to exit codes.
"""

import posix
import stat
import sys

from pyrunc import fastjson
from pyrunc import pathstr
from pyrunc.errors import ConfigError, oserror_text
from pyrunc.spec import semantic
from pyrunc.spec.config import Config, Process
from pyrunc.spec.validate import json_path, validate


def load_bundle(bundle_dir, require_process=True, warn=None):
    """The bundle's config.json as a checked Config.

    `require_process` is False only for callers that never start the process.
    `warn(message)` receives what runc would log as a warning (e.g. a relative
    mount destination); warnings are dropped when it is None.
    """
    path = pathstr.join(bundle_dir, "config.json")
    doc = _parse(_read(path), path)
    validate(doc, "config")
    _check_strings(doc, skip="annotations")
    for message in semantic.check_config(doc, require_process=require_process):
        if warn is not None:
            warn(message)
    config = Config.from_dict(_absolute_destinations(doc), bundle_dir)
    _check_rootfs(config.root.path)
    return config


def load_process(path_or_dash, stdin=None):
    """The process object given to `exec --process` as a checked Process."""
    name, data = _read_arg(path_or_dash, stdin)
    doc = _parse(data, name)
    validate(doc, "process")
    _check_strings(doc)
    semantic.check_process(doc, base="")
    return Process.from_dict(doc)


def load_resources(path_or_dash, stdin=None):
    """The LinuxResources JSON given to `update --resources`, schema-checked."""
    name, data = _read_arg(path_or_dash, stdin)
    doc = _parse(data, name)
    validate(doc, "linux-resources")
    _check_strings(doc)
    return doc


def _read(path):
    from pyrunc.state import read_bytes   # loaded by create before: no builtin open()
    try:
        return read_bytes(path)
    except OSError as e:
        raise ConfigError("", f"open {path}: {oserror_text(e)}") from None


def _read_arg(path_or_dash, stdin):
    if path_or_dash == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        data = stream.read()
        return "<stdin>", data.encode() if isinstance(data, str) else data
    return path_or_dash, _read(path_or_dash)


def _parse(data, name):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("", f"parse {name}: invalid UTF-8 at byte {e.start}") from None
    try:
        return fastjson.loads(text)   # json.loads: its result, and its errors
    except RecursionError:
        # json's decoder recurses once per "[" or "{": a hostile file must not crash us
        raise ConfigError("", f"parse {name}: nested too deeply") from None
    except ValueError as e:
        import json   # free: fastjson left the failing text to json, which raised this
        if not isinstance(e, json.JSONDecodeError):
            # Python's 4300-digit limit on an integer literal
            raise ConfigError("", f"parse {name}: {str(e).split(':')[0].lower()}") from None
        # Go says "unexpected end of JSON input" for a truncated file; keep
        # that wording, and add where it happened, which Go does not.
        truncated = e.pos >= len(text.rstrip())
        what = "unexpected end of JSON input" if truncated else e.msg.lower()
        raise ConfigError("", f"parse {name}: {what} at line {e.lineno} "
                              f"column {e.colno}") from None


def _check_strings(node, segs=(), skip=None):
    """No string (key or value) may hold a NUL byte or a lone surrogate (what a
    \\ud800 escape decodes to): neither can be handed to a syscall, and Python
    would fail there, deep in create, instead of with the JSON path here.
    `skip` names a top-level member that is metadata (annotations), never used."""
    if isinstance(node, str):
        if "\0" in node:
            raise ConfigError(json_path(segs), "invalid argument: the string contains a NUL byte")
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(json_path(segs), "invalid argument: the string is not valid "
                                               "UTF-8 (a lone surrogate)") from None
    elif isinstance(node, dict):
        for k, v in node.items():
            if not segs and k == skip:
                continue
            _check_strings(k, segs + (k,))
            _check_strings(v, segs + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_strings(v, segs + (i,))


def _absolute_destinations(doc):
    """runc accepts a relative mount destination as relative to the container's
    "/" (with a warning); make it absolute so nothing downstream has to care."""
    mounts = doc.get("mounts")
    if not mounts or all(m["destination"].startswith("/") for m in mounts):
        return doc
    fixed = [m if m["destination"].startswith("/") else {**m, "destination": "/" + m["destination"]}
             for m in mounts]
    return {**doc, "mounts": fixed}


def _check_rootfs(path):
    try:
        st = posix.stat(path)
    except OSError as e:
        raise ConfigError("root.path", f"invalid rootfs: stat {path}: {oserror_text(e)}") from None
    except ValueError:
        # a NUL byte or a lone surrogate: no file has such a name (Go: EINVAL)
        raise ConfigError("root.path", f"invalid rootfs: stat {path!r}: invalid argument") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError("root.path", f"invalid rootfs: {path}: not a directory")
