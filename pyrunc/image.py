"""pyrunc's modules, compiled into one file that the launcher imports them from.

Every runtime call is a fresh interpreter, and importing a module the usual
way costs ~50-70 us of Python before its code even runs: the path finder
walks sys.path and the package's directory, the loader stats the source,
works out the __pycache__ name, opens, reads and checks the .pyc.  `create`
imports ~60 of our modules.  install.sh (through `python -m pyrunc.launcher`)
therefore writes pyrunc/_image: every module of the package compiled, with an
index; the launcher puts an ImageFinder first on sys.meta_path, which finds a
module with a dict lookup and reads its code with one pread().  It also
becomes builtins.__import__: importlib's own steps around each module (module
locks, the spec's attributes, the fromlist walk) cost ~15 us more, and a
create imports ~50 modules.  Any other import (the standard library, cffi's
extension, a module edited since, a relative import) goes the normal way.

The image also holds the JSON schemas in specs/ (spec/fastvalidate.py),
parsed, under their absolute paths: ~0.1 ms a create.  And it knows where
the extension modules every create imports are (_json, _cffi_backend,
pyrunc._libc): the path finder would list /usr/lib/python3.X, lib-dynload,
site-packages and pyrunc/ to find them (~0.15 ms a create); the image hands
their file to importlib's own extension loader.

The image never runs stale code: each entry keeps its source's mtime and size,
and a module whose source changed since (or is gone) is left to the normal
import.  A new module is not in the image and is imported normally too.  The
header carries the interpreter's bytecode magic, so another Python ignores it.

The launcher reads the header, checks it and runs the boot code, which is
ImageFinder below, compiled: the launcher itself is compiled from source at
every call (a script has no .pyc), so it carries only the few lines of
bootstrap() (~0.15 ms less than carrying the class).

Layout: MAGIC, the interpreter's 4-byte bytecode magic, the boot code's length
(4 bytes, little endian), the boot code (marshal), the index length (8 bytes),
the index (marshal of {module name: (is package, source path, source
mtime_ns, source size, offset, length)}; an extension module's offset is
EXTENSION and its "source" the shared object), then the code objects
(marshal), offsets counted from the end of the index.

    python -m pyrunc.image TARGET [PACKAGE_DIR]     write an image (atomically)

Modules are compiled with optimize=2 and, by the launcher's install, without
column tables: ~20% less to unmarshal, the bulk of an import from the image.
"""
import json
import marshal
import os
import posix   # ImageFinder's name for it, as in the launcher
import sys

MAGIC = b"PYRUNCI2"
EXTENSION = -1   # an index entry's offset: a shared object, loaded from its path
# the extension modules a create imports; the others are found the usual way
HOT_EXTENSIONS = ("_json", "_cffi_backend", "pyrunc._libc")


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


def schema_files(package_dir):
    """The *.schema.json files spec/validate.py reads for this package."""
    for candidate in (os.path.join(package_dir, "_specs"),
                      os.path.join(os.path.dirname(os.path.abspath(package_dir)), "specs")):
        if os.path.isfile(os.path.join(candidate, "config.schema.json")):
            return sorted(os.path.join(candidate, n) for n in os.listdir(candidate)
                          if n.endswith(".schema.json"))
    return []


def extension_files(names):
    """{name: path} of those of the named extension modules this interpreter finds."""
    import importlib.machinery
    import importlib.util
    found = {}
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except ImportError:
            continue
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            found[name] = spec.origin
    return found


def build(package_dir, extensions=None):
    """The image's bytes for the package in package_dir; extensions: {name:
    shared object} of extension modules the image is to find."""
    index, blobs, offset = {}, [], 0
    for name, path, is_pkg in modules(os.path.abspath(package_dir)):
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            source = f.read()
        # optimize=2: no docstrings (nothing in pyrunc reads __doc__ or uses
        # assert; a test keeps it so) -- ~20% less to unmarshal with the
        # column tables that `python -X no_debug_ranges` leaves out
        blob = marshal.dumps(compile(source, path, "exec", dont_inherit=True, optimize=2))
        index[name] = (is_pkg, path, st.st_mtime_ns, st.st_size, offset, len(blob))
        blobs.append(blob)
        offset += len(blob)
    for path in schema_files(package_dir):
        # parsed already: marshal rebuilds the dicts far faster than JSON is read
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            blob = marshal.dumps(json.loads(f.read()))
        index[path] = (False, path, st.st_mtime_ns, st.st_size, offset, len(blob))
        blobs.append(blob)
        offset += len(blob)
    for name, path in (extensions or {}).items():
        st = os.stat(path)
        index[name] = (False, path, st.st_mtime_ns, st.st_size, EXTENSION, 0)
    import inspect
    lines, first = inspect.getsourcelines(ImageFinder)
    boot = "\n" * (first - 1) + "".join(lines)   # tracebacks show image.py's own lines
    boot += "ImageFinder(_image, _fd).install()\n"
    boot = marshal.dumps(compile(boot, __file__, "exec", dont_inherit=True))
    head = marshal.dumps(index)
    return b"".join([MAGIC, _bytecode_magic(), len(boot).to_bytes(4, "little"), boot,
                     len(head).to_bytes(8, "little"), head] + blobs)


def bootstrap(path):
    """The launcher's lines that put the image's finder in place; they may use
    only gc, marshal, posix and sys, and leave the normal import alone when the
    image is missing or not for this interpreter."""
    return (f"_image = {path!r}\n"
            "try:   # pyrunc's modules from one compiled file: pyrunc/image.py\n"
            "    _fd = posix.open(_image, posix.O_RDONLY | posix.O_CLOEXEC)\n"
            "    try:\n"
            "        _head = posix.read(_fd, 16)\n"
            f"        if _head[:12] == {MAGIC!r} + "
            "sys.modules['_frozen_importlib_external'].MAGIC_NUMBER:\n"
            "            exec(marshal.loads(posix.read(_fd, int.from_bytes(_head[12:], 'little'))))\n"
            "    finally:\n"
            "        posix.close(_fd)\n"
            "except (OSError, ValueError, EOFError):\n"
            "    pass\n")


def read_index(path):
    """The index of the image at path (ValueError if it is not one for this Python)."""
    with open(path, "rb") as f:
        head = f.read(16)
        if head[:12] != MAGIC + _bytecode_magic():
            raise ValueError(f"{path}: not a pyrunc image for this interpreter")
        f.seek(int.from_bytes(head[12:], "little"), 1)
        return marshal.loads(f.read(int.from_bytes(f.read(8), "little")))


def stale(path):
    """The names of the image's modules whose source changed or went since it was made."""
    out = []
    for name, (_, origin, mtime_ns, size, _, _) in read_index(path).items():
        try:
            st = os.stat(origin)
        except OSError:
            out.append(name)
            continue
        if (st.st_mtime_ns, st.st_size) != (mtime_ns, size):
            out.append(name)
    return out


def write(target, package_dir, extensions=None):
    tmp = f"{target}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(build(package_dir, extensions))
    os.rename(tmp, target)


def write_lean(target, package_dir, python=None):
    """write(), by an interpreter started with -X no_debug_ranges: code objects
    without column tables (tracebacks then show no ^^^ marks)."""
    import subprocess
    subprocess.run([python or sys.executable, "-X", "no_debug_ranges", "-m", "pyrunc.image",
                    target, package_dir], check=True, cwd=os.path.dirname(package_dir))


# The boot code of the image (see the module doc): it may use only marshal,
# posix and sys, and runs with the launcher's _image (path) and _fd (the image,
# read up to the index).
class ImageFinder:
    """A meta path finder and loader for the modules in an image file."""

    def __init__(self, path, fd):
        size = int.from_bytes(posix.read(fd, 8), "little")
        start = posix.lseek(fd, 0, 1)   # SEEK_CUR (os has the name, posix not)
        self.index = marshal.loads(posix.pread(fd, size, start))
        self.path, self.base = path, start + size
        self.stamp = self._stamp(fd)
        # our own fd on the image read: the launcher closes its _fd, and a
        # replaced image stays readable through it (its offsets are ours)
        self.fd = posix.dup(fd)
        self.spec_type = sys.modules["_frozen_importlib"].ModuleSpec
        self.load_spec = sys.modules["_frozen_importlib"]._load
        self.extension_loader = sys.modules["_frozen_importlib_external"].ExtensionFileLoader

    @staticmethod
    def _stamp(fd):
        st = posix.fstat(fd)
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

    def install(self):
        """First on sys.meta_path, and the `import` statement's function: an
        import of one of the image's modules then skips importlib's per-module
        machinery (module locks, spec and attribute set-up: ~15 us a module,
        ~0.7 ms a create); every other import goes the normal way."""
        sys.meta_path.insert(0, self)
        builtins = sys.modules["builtins"]
        self.std_import = builtins.__import__
        self.import_lock = sys.modules["_imp"]
        builtins.__import__ = self.import_

    def import_(self, name, globals=None, locals=None, fromlist=(), level=0):
        """builtins.__import__ for the image's modules (absolute imports)."""
        if level:   # relative: name is not the module's (asyncio has them)
            return self.std_import(name, globals, locals, fromlist, level)
        modules = sys.modules
        module = modules.get(name)
        if module is None:
            if name not in self.index:
                return self.std_import(name, globals, locals, fromlist, level)
            self.import_lock.acquire_lock()   # as importlib: one thread loads a module
            try:
                module = modules.get(name) or self._load(name)
            finally:
                self.import_lock.release_lock()
        if fromlist:
            if hasattr(module, "__path__"):   # `from package import submodule`
                for item in fromlist:
                    sub = f"{name}.{item}"
                    if item != "*" and not hasattr(module, item) and sub not in modules:
                        try:
                            self.import_(sub)
                        except ModuleNotFoundError:
                            pass   # not a submodule either: the import raises ImportError
            return module
        return modules[name.partition(".")[0]] if "." in name else module

    def _load(self, name):
        parent, _, child = name.rpartition(".")
        if parent and parent not in sys.modules:
            self.import_(parent)
            if name in sys.modules:   # the package imported it
                return sys.modules[name]
        spec = self.find_spec(name)
        if spec is None:   # edited since the image was made
            self.std_import(name)
            return sys.modules[name]
        if spec.loader is self:
            module = self._exec_new(name, parent, spec)
        else:   # an extension module: importlib's loader makes it
            module = self.load_spec(spec)
        if parent:
            setattr(sys.modules[parent], child, module)
        return module

    def _exec_new(self, name, parent, spec):
        module = type(sys)(name)
        module.__spec__, module.__loader__, module.__file__ = spec, self, spec.origin
        if spec.submodule_search_locations is not None:
            module.__path__ = spec.submodule_search_locations
            module.__package__ = name
        else:
            module.__package__ = parent
        sys.modules[name] = module
        try:
            self.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return sys.modules[name]

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
        if entry[4] == -1:   # EXTENSION (the boot code has no globals of image.py)
            spec = self.spec_type(name, self.extension_loader(name, origin), origin=origin)
            spec.has_location = True
            return spec
        spec = self.spec_type(name, self, origin=origin, is_package=is_pkg)
        spec.has_location = True   # __file__, tracebacks show the source
        if is_pkg:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        spec = module.__spec__
        offset, length = self.index[spec.name][4:]
        data = self._pread(length, self.base + offset)
        if data is None:
            # install.sh wrote a new image since we read the index: its
            # offsets are not ours, so this one module is imported normally
            loader = sys.modules["_frozen_importlib_external"].SourceFileLoader
            loader(spec.name, spec.origin).exec_module(module)
            return
        exec(marshal.loads(data), module.__dict__)

    def data(self, path):
        """The parsed JSON of the file at path (a schema), while the file is
        as the image has it; None otherwise."""
        entry = self.index.get(path)
        if entry is None:
            return None
        try:
            st = posix.stat(path)
        except OSError:
            return None
        if (st.st_mtime_ns, st.st_size) != entry[2:4]:
            return None
        blob = self._pread(entry[5], self.base + entry[4])
        return None if blob is None else marshal.loads(blob)

    def _pread(self, length, offset):
        """From our fd; after create's child closed it (its number maybe
        reused: the identity says), from the path, if it is the same file."""
        try:
            if self._stamp(self.fd) == self.stamp:
                return posix.pread(self.fd, length, offset)
        except OSError:
            pass
        fd = posix.open(self.path, posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            return posix.pread(fd, length, offset) if self._stamp(fd) == self.stamp else None
        finally:
            posix.close(fd)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m pyrunc.image TARGET [PACKAGE_DIR]")
    write(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else os.path.dirname(__file__),
          extension_files(HOT_EXTENSIONS))
