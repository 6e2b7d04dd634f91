"""pyrunc's modules, compiled into one file that the launcher imports them from.

Every runtime call is a fresh interpreter, and importing a module the usual
way costs ~50-70 us of Python before its code even runs: the path finder
walks sys.path and the package's directory, the loader stats the source,
works out the __pycache__ name, opens, reads and checks the .pyc.  `create`
imports ~60 of our modules.  install.sh (through `python -m pyrunc.launcher`)
therefore writes pyrunc/_image: every module of the package compiled, with an
index; the launcher puts an ImageFinder first on sys.meta_path, which finds a
module with a dict lookup and reads its code with one pread().

The image never runs stale code: each entry keeps its source's mtime and size,
and a module whose source changed since (or is gone) is left to the normal
import.  A new module is not in the image and is imported normally too.  The
header carries the interpreter's bytecode magic, so another Python ignores it.

Layout: MAGIC, the interpreter's 4-byte bytecode magic, the index length (8
bytes, little endian), the index (marshal of {module name: (is package, source
path, source mtime_ns, source size, offset, length)}), then the code objects
(marshal), offsets counted from the end of the index.

    python -m pyrunc.image TARGET [PACKAGE_DIR]     write an image (atomically)
"""
import marshal
import os
import posix   # ImageFinder's name for it, as in the launcher
import sys

MAGIC = b"PYRUNCI1"


def _bytecode_magic():
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER


def modules(package_dir):
    """(dotted name, source path, is package) of every module under package_dir."""
    top = os.path.basename(os.path.normpath(package_dir))
    found = []
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__"
                             and os.path.exists(os.path.join(dirpath, d, "__init__.py")))
        rel = os.path.relpath(dirpath, package_dir)
        prefix = top if rel == "." else top + "." + rel.replace(os.sep, ".")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            if name == "__init__.py":
                found.append((prefix, path, True))
            else:
                found.append((prefix + "." + name[:-3], path, False))
    return found


def build(package_dir):
    """The image's bytes for the package in package_dir."""
    index, blobs, offset = {}, [], 0
    for name, path, is_pkg in modules(os.path.abspath(package_dir)):
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            source = f.read()
        blob = marshal.dumps(compile(source, path, "exec", dont_inherit=True))
        index[name] = (is_pkg, path, st.st_mtime_ns, st.st_size, offset, len(blob))
        blobs.append(blob)
        offset += len(blob)
    head = marshal.dumps(index)
    return b"".join([MAGIC, _bytecode_magic(), len(head).to_bytes(8, "little"), head] + blobs)


def write(target, package_dir):
    tmp = f"{target}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(build(package_dir))
    os.rename(tmp, target)


# The launcher carries this class's source (pyrunc/launcher.py), so that using
# the image imports nothing: it may use only marshal, posix and sys.
class ImageFinder:
    """A meta path finder and loader for the modules in an image file."""

    def __init__(self, path):
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            head = posix.read(fd, 20)
            external = sys.modules["_frozen_importlib_external"]
            if len(head) != 20 or head[:12] != b"PYRUNCI1" + external.MAGIC_NUMBER:
                raise ValueError(f"{path}: not an image for this interpreter")
            size = int.from_bytes(head[12:], "little")
            self.index = marshal.loads(posix.pread(fd, size, 20))
        finally:
            posix.close(fd)
        self.path, self.base = path, 20 + size
        self.spec_type = sys.modules["_frozen_importlib"].ModuleSpec

    def find_spec(self, name, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        is_pkg, origin, mtime_ns, size = entry[:4]
        try:
            st = posix.stat(origin)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None   # edited since the image was made: the normal import
        spec = self.spec_type(name, self, origin=origin, is_package=is_pkg)
        spec.has_location = True   # __file__, tracebacks show the source
        if is_pkg:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        offset, length = self.index[module.__spec__.name][4:]
        fd = posix.open(self.path, posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            data = posix.pread(fd, length, self.base + offset)
        finally:
            posix.close(fd)
        exec(marshal.loads(data), module.__dict__)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m pyrunc.image TARGET [PACKAGE_DIR]")
    write(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else os.path.dirname(__file__))
