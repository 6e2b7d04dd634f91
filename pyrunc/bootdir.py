"""The interpreter the launcher runs: a symlink to Python beside a `._pth` file.

Before it runs a line of pyrunc, Python imports `encodings` (its codecs
registry needs it).  The path finder lists /usr/lib/python3.X (~210 entries)
to find it and then the encodings package (~125 entries) for the two
submodules start-up uses, and the default path search stats a zip, a
pyvenv.cfg and landmark files first: ~0.27 ms of every runtime call, three
times per container on the shim's path.

Python 3.11 reads `<executable>._pth` next to the executable it was started
as: its lines are sys.path, exactly, and it implies -I -S.  The launcher's
shebang therefore names BOOT/python3, a symlink to the interpreter, with
BOOT/python3._pth holding BOOT/lib, the interpreter's own directories and
the venv's.  BOOT/lib/encodings holds copies of the three modules start-up
imports, taken from this interpreter at install time; its __init__ appends
the standard encodings directory to the package's __path__, so every other
codec is found where it always was.  The copy of __init__ also imports
encodings.aliases (a 300-entry table) only at the first lookup that can need
it: start-up looks up utf_8 alone, which is not an alias (~0.11 ms a call).

BOOT/lib also holds the launcher's body (pyrunc/launcher.py), compiled.

An interpreter that ignores ._pth files starts as before: the launcher still
adds BOOT/lib and the venv's directories when they are missing from sys.path.
"""
import os
import subprocess

PYTHON = "python3"
STARTUP_ENCODINGS = ("__init__", "aliases", "utf_8")   # what Python imports before main
_STARTUP_LOOKUPS = ("utf_8",)   # the codec names Python's start-up looks up
_PROBE = ("import encodings.aliases, sys; print(encodings.__path__[0]); "
          f"print(*(n for n in {_STARTUP_LOOKUPS!r} if n not in encodings.aliases.aliases)); "
          "print('\\n'.join(p for p in sys.path if p))")


def probe(python):
    """(the stdlib encodings directory, those start-up lookups that are not
    aliases, sys.path of `python -I -S`): one run of the interpreter, which
    the launcher's install also uses for what site adds."""
    out = subprocess.run([python, "-I", "-S", "-c", _PROBE], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin"}, cwd="/").stdout.split("\n")
    return out[0], out[1].split(), [p for p in out[2:] if p]


# What replaces `_aliases = aliases.aliases` in the copy of encodings/__init__.py:
# the same dict once anything needs it; until then a lookup of a name that is
# not an alias (checked at install) does not import the table.
_LAZY_ALIASES = """\
# pyrunc (pyrunc/bootdir.py): encodings.aliases is imported at the first lookup
# that can need it; Python's start-up looks up utf_8, which is not an alias.
_NOT_ALIASES = frozenset(%r)


def _load_aliases():
    global _aliases
    # not `from . import aliases`: it asks __getattr__ below for the name first
    __import__(__name__ + ".aliases")
    _aliases = sys.modules[__name__ + ".aliases"].aliases
    return _aliases


class _AliasesUntilNeeded:
    def get(self, name, default=None):
        if name in _NOT_ALIASES and "encodings.aliases" not in sys.modules:
            return default
        return _load_aliases().get(name, default)

    def __contains__(self, name):
        return name in _load_aliases()

    def __setitem__(self, name, value):
        _load_aliases()[name] = value


def __getattr__(name):
    # `import encodings` used to make encodings.aliases an attribute
    if name == "aliases":
        _load_aliases()
        return globals()["aliases"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_aliases = _AliasesUntilNeeded()
"""
_EAGER = (b"from . import aliases\n", b"_aliases = aliases.aliases\n")


def lazy_aliases(source, not_aliases):
    """encodings/__init__.py's source with the alias table imported lazily;
    unchanged if it does not read as the version this was written for."""
    if not not_aliases or not all(source.count(line) == 1 for line in _EAGER):
        return source
    source = source.replace(_EAGER[0], b"")
    return source.replace(_EAGER[1], (_LAZY_ALIASES % (tuple(not_aliases),)).encode())


def _replace(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def _relink(path, target):
    tmp = f"{path}.tmp{os.getpid()}"
    os.symlink(target, tmp)
    os.rename(tmp, path)


def lib(boot):
    return os.path.join(boot, "lib")


def pth_lines(boot, interpreter_paths, site_paths):
    """sys.path for the launcher: the boot encodings first, then the
    interpreter's existing directories, then the venv's."""
    lines = [lib(boot)]
    for p in list(interpreter_paths) + list(site_paths):
        if p not in lines and os.path.isdir(p):
            lines.append(p)
    return lines


def write(boot, python, site_paths, modules=None, probed=None):
    """Make (or refresh) BOOT for `python`, with modules ({name: source}) in
    BOOT/lib; returns the interpreter path the launcher's shebang names.  Each
    file is replaced atomically: a runtime call starting meanwhile sees the old
    file or the new one.  probed: probe(python), if the caller has it."""
    encodings_dir, not_aliases, interpreter_paths = probed or probe(python)
    package = os.path.join(lib(boot), "encodings")
    os.makedirs(package, exist_ok=True)
    sources = []
    for name in STARTUP_ENCODINGS:
        with open(os.path.join(encodings_dir, name + ".py"), "rb") as f:
            source = f.read()
        if name == "__init__":
            source = lazy_aliases(source, not_aliases)
            source += (b"\n# pyrunc (pyrunc/bootdir.py): the other codecs where they are\n"
                       b"__path__.append(%s)\n" % repr(encodings_dir).encode())
        sources.append(os.path.join(package, name + ".py"))
        _replace(sources[-1], source)
    for name, text in (modules or {}).items():
        sources.append(os.path.join(lib(boot), name + ".py"))
        _replace(sources[-1], text.encode())
    # compiled by the interpreter that will import them (py_compile renames into place)
    subprocess.run([python, "-I", "-S", "-m", "py_compile", *sources], check=True)
    lines = pth_lines(boot, interpreter_paths, site_paths)
    _replace(os.path.join(boot, PYTHON + "._pth"), ("\n".join(lines) + "\n").encode())
    exe = os.path.join(boot, PYTHON)
    _relink(exe, os.path.realpath(python))
    return exe
