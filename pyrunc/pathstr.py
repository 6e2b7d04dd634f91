"""What pyrunc uses of os.path (and os.makedirs), on `posix` alone.

Importing os costs every create, run and exec ~0.7 ms (it builds os.environ
and imports _collections_abc and posixpath), more than all of validating a
config.  The modules that run on those paths use `posix` and this module
instead; they behave as posixpath does for str paths (tests/unit/test_pathstr.py
holds them to it).
"""
import posix

_S_IFMT, _S_IFDIR, _S_IFREG = 0o170000, 0o040000, 0o100000


def join(a, *rest):
    path = a
    for b in rest:
        if b.startswith("/"):
            path = b
        elif not path or path.endswith("/"):
            path += b
        else:
            path += "/" + b
    return path


def isabs(p):
    return p.startswith("/")


def dirname(p):
    head = p[:p.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def basename(p):
    return p[p.rfind("/") + 1:]


def normpath(p):
    if not p:
        return "."
    # POSIX leaves the meaning of exactly two leading slashes to the system
    lead = 2 if p.startswith("//") and not p.startswith("///") else (1 if p[0] == "/" else 0)
    parts = []
    for part in p.split("/"):
        if part in ("", "."):
            continue
        if part != ".." or (not lead and not parts) or (parts and parts[-1] == ".."):
            parts.append(part)
        elif parts:
            parts.pop()
    return "/" * lead + "/".join(parts) or "."


def abspath(p):
    return normpath(p if p.startswith("/") else join(posix.getcwd(), p))


def _mode(path):
    try:
        return posix.stat(path).st_mode
    except (OSError, ValueError):
        return None


def exists(path):
    return _mode(path) is not None


def isdir(path):
    mode = _mode(path)
    return mode is not None and mode & _S_IFMT == _S_IFDIR


def isfile(path):
    mode = _mode(path)
    return mode is not None and mode & _S_IFMT == _S_IFREG


def makedirs(path, mode=0o777, exist_ok=False):
    """os.makedirs: the missing parents first (mode is the last one's only)."""
    parent = dirname(path.rstrip("/"))
    if parent and parent != path and not exists(parent):
        try:
            makedirs(parent, exist_ok=True)
        except FileExistsError:
            pass   # made meanwhile by someone else
    try:
        posix.mkdir(path, mode)
    except OSError:
        if not exist_ok or not isdir(path):
            raise


def fsencode(s):
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")
