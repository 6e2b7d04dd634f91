"""pyrunc/image.py: the launcher imports pyrunc's modules from one compiled file,
never a stale one."""
import os
import subprocess
import sys
import time

import pytest

from pyrunc import image, launcher

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# run in `python -I -S`: the launcher's bootstrap, then import pkg.sub and
# report where each module came from
PROBE = """
import marshal, posix, sys
sys.path.insert(0, {root!r})
{bootstrap}
import pkg.sub
for name in ("pkg", "pkg.sub", "pkg.helper"):
    m = sys.modules.get(name)
    if m is not None:
        print(name, type(m.__spec__.loader).__name__, m.__file__, getattr(m, "VALUE", None))
"""


def _package(root):
    pkg = root / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 'init'\n")
    (pkg / "helper.py").write_text("VALUE = 'helper'\n")
    (pkg / "sub.py").write_text("from . import helper\nVALUE = 'sub:' + helper.VALUE\n")
    (pkg / "data.txt").write_text("not a module\n")
    return pkg


def _probe(tmp_path, img):
    code = PROBE.format(root=str(tmp_path), bootstrap=image.bootstrap(str(img)))
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines()}


def test_modules_come_from_the_image(tmp_path):
    pkg = _package(tmp_path)
    image.write(str(tmp_path / "img"), str(pkg))
    got = _probe(tmp_path, tmp_path / "img")
    assert got["pkg.sub"] == ["ImageFinder", str(pkg / "sub.py"), "sub:helper"]
    assert got["pkg"] == ["ImageFinder", str(pkg / "__init__.py"), "init"]


def test_an_edited_module_is_imported_from_its_source(tmp_path):
    pkg = _package(tmp_path)
    image.write(str(tmp_path / "img"), str(pkg))
    time.sleep(0.01)
    (pkg / "helper.py").write_text("VALUE = 'edited'\n")   # same size, newer mtime
    got = _probe(tmp_path, tmp_path / "img")
    assert got["pkg.helper"][0] == "SourceFileLoader" and got["pkg.helper"][2] == "edited"
    assert got["pkg.sub"] == ["ImageFinder", str(pkg / "sub.py"), "sub:edited"]


def test_a_module_gone_or_new_since_is_the_normal_import(tmp_path):
    pkg = _package(tmp_path)
    (pkg / "old.py").write_text("")
    image.write(str(tmp_path / "img"), str(pkg))
    (pkg / "old.py").unlink()
    (pkg / "sub.py").write_text("from . import new\nVALUE = new.VALUE\n")
    (pkg / "new.py").write_text("VALUE = 'new'\n")
    got = _probe(tmp_path, tmp_path / "img")
    assert got["pkg.sub"][0] == "SourceFileLoader" and got["pkg.sub"][2] == "new"
    r = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, "
                        f"{str(tmp_path)!r}); import pkg.old"], capture_output=True, text=True)
    assert "No module named 'pkg.old'" in r.stderr


def _other_python(img):
    data = img.read_bytes()
    return data[:8] + b"\0\0\r\n" + data[12:]   # another bytecode magic


@pytest.mark.parametrize("content", [lambda img: b"", lambda img: b"not an image at all",
                                     _other_python, lambda img: img.read_bytes()[:100]],
                         ids=["empty", "garbage", "other-python", "truncated"])
def test_a_foreign_image_is_refused_and_imports_still_work(tmp_path, content):
    pkg = _package(tmp_path)
    img = tmp_path / "img"
    image.write(str(img), str(pkg))
    img.write_bytes(content(img))
    got = _probe(tmp_path, img)
    assert got["pkg.sub"][0] == "SourceFileLoader" and got["pkg.sub"][2] == "sub:helper"


def test_no_image_file(tmp_path):
    _package(tmp_path)
    got = _probe(tmp_path, tmp_path / "missing")
    assert got["pkg"][0] == "SourceFileLoader"


def test_the_image_holds_every_module_of_pyrunc():
    names = {name for name, _, _ in image.modules(os.path.join(REPO, "pyrunc"))}
    assert {"pyrunc", "pyrunc.cli", "pyrunc.executor.launch", "pyrunc.plan.steps"} <= names
    assert not any("__pycache__" in n or n.endswith("_libc") for n in names)


def test_the_launcher_runs_pyrunc_from_its_image(tmp_path):
    """Through the real launcher text: pyrunc's modules are the image's, and a
    traceback still shows the source (tracebacks read __file__)."""
    img = tmp_path / "_image"
    image.write(str(img), os.path.join(REPO, "pyrunc"))
    text = launcher.body(launcher.site_paths(sys.executable), str(img))
    text = text.replace("main_and_exit()\n", "") + (
        "import pyrunc.cli, pyrunc.lifecycle\n"
        "print(type(pyrunc.lifecycle.__spec__.loader).__name__)\n"
        "pyrunc.lifecycle.write_pid_file('/nonexistent/dir/pid', 1)\n")
    exe = tmp_path / "launcher"
    exe.write_text(text)
    r = subprocess.run([sys.executable, "-I", "-S", str(exe)], capture_output=True, text=True)
    assert r.stdout.splitlines() == ["ImageFinder"], r.stderr
    assert "failed to write pid file" in r.stderr and "raise RuntimeFailure(" in r.stderr


def test_stale_names_what_changed_since(tmp_path):
    pkg = _package(tmp_path)
    img = tmp_path / "img"
    image.write(str(img), str(pkg))
    assert set(image.read_index(str(img))) == {"pkg", "pkg.helper", "pkg.sub"}
    assert image.stale(str(img)) == []
    (pkg / "helper.py").write_text("VALUE = 'a longer helper'\n")
    (pkg / "sub.py").unlink()
    assert sorted(image.stale(str(img))) == ["pkg.helper", "pkg.sub"]
    img.write_bytes(b"junk")
    with pytest.raises(ValueError):
        image.read_index(str(img))


def test_an_image_replaced_under_a_running_process_is_not_read_with_old_offsets(tmp_path):
    """install.sh may write a new image while a pyrunc runs: its later imports
    must not read the new file at the old index's offsets."""
    pkg = _package(tmp_path)
    img = tmp_path / "img"
    image.write(str(img), str(pkg))
    code = PROBE.format(root=str(tmp_path), bootstrap=image.bootstrap(str(img))).replace(
        "import pkg.sub", "import pkg\n"
        f"import pyrunc_rebuild; pyrunc_rebuild.rebuild({str(img)!r}, {str(pkg)!r})\n"
        "import pkg.sub")
    (tmp_path / "pyrunc_rebuild.py").write_text(
        "import sys\n"
        f"sys.path.append({os.path.dirname(os.path.dirname(image.__file__))!r})\n"
        "def rebuild(img, pkg):\n"
        "    from pyrunc import image\n"
        "    with open(pkg + '/zzz_big.py', 'w') as f:\n"   # shifts every offset after it
        "        f.write('X = ' + repr('x' * 5000) + '\\n')\n"
        "    image.write(img, pkg)\n")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines()}
    assert got["pkg"][0] == "ImageFinder"
    assert got["pkg.sub"][2] == "sub:helper"
    assert got["pkg.sub"][0] == "ImageFinder"   # found through the old index...


def test_pyrunc_runs_the_same_without_docstrings_and_asserts():
    """The image compiles with optimize=2, which drops docstrings, assert
    statements and `if __debug__:` blocks: none of them may matter to pyrunc."""
    import ast
    found = []
    for name, path, _ in image.modules(os.path.join(REPO, "pyrunc")):
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert) or \
                    (isinstance(node, ast.Attribute) and node.attr == "__doc__") or \
                    (isinstance(node, ast.Name) and node.id in ("__debug__", "__doc__")):
                found.append(f"{name}:{node.lineno}")
    assert found == []


def test_the_installed_image_is_lean(tmp_path):
    """launcher.write's image: no docstrings, no column tables."""
    img = tmp_path / "_image"
    image.write_lean(str(img), os.path.join(REPO, "pyrunc"))
    code = PROBE.format(root=REPO, bootstrap=image.bootstrap(str(img))).replace(
        "import pkg.sub", "import pyrunc.record").split("for name in")[0] + (
        "c = pyrunc.record.Record.__init__.__code__\n"
        "print(pyrunc.record.__doc__, type(pyrunc.record.__spec__.loader).__name__,\n"
        "      set(p[2:] for p in c.co_positions()))\n")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert r.stdout.split(None, 2) == ["None", "ImageFinder", "{(None, None)}\n"], r.stderr


SCHEMA_PROBE = """
import marshal, posix, sys
{bootstrap}
finder = sys.meta_path[0]
print(repr(finder.data({path!r})))
"""


def test_the_image_holds_the_schemas_parsed_while_they_are_unchanged(tmp_path):
    pkg = _package(tmp_path)
    specs = tmp_path / "specs"
    specs.mkdir()
    schema = specs / "config.schema.json"
    schema.write_text('{"$id": "x/config.schema.json", "type": "object"}')
    image.write(str(tmp_path / "img"), str(pkg))

    def data():
        code = SCHEMA_PROBE.format(bootstrap=image.bootstrap(str(tmp_path / "img")),
                                   path=str(schema))
        r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    assert data() == "{'$id': 'x/config.schema.json', 'type': 'object'}"
    time.sleep(0.01)
    schema.write_text('{"$id": "x/config.schema.json", "type": "array!"}')
    assert data() == "None"   # changed since: validate reads the file itself


def test_the_validator_reads_the_installed_images_schemas():
    """The launcher's image carries specs/ (spec/fastvalidate.py loads it from there)."""
    probe = ("import sys\nfrom pyrunc.spec import fastvalidate, validate\n"
             "f = [m for m in sys.meta_path if type(m).__name__ == 'ImageFinder'][0]\n"
             "calls = []\nreal = f.data\n"
             "f.data = lambda p: calls.append(p) or real(p)\n"
             "s = fastvalidate.SchemaSet.load(validate.specs_dir(), lazy=True)\n"
             "print(len(calls), sum(real(p) is not None for p in calls))\n")
    if image.stale(os.path.join(REPO, "pyrunc", "_image")):
        pytest.skip("the installed image is stale: ./install.sh writes it anew")
    launcher_text = launcher.body_of(os.path.join(REPO, ".venv", "bin", "pyrunc"))
    head = launcher_text.split("from pyrunc.cli import")[0]
    r = subprocess.run([sys.executable, "-I", "-S", "-c", head + probe], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    n, hits = map(int, r.stdout.split())
    assert n == len(os.listdir(os.path.join(REPO, "specs"))) and hits == n


IMPORT_PROBE = """
import marshal, posix, sys
sys.path.insert(0, {root!r})
{bootstrap}
import builtins
print(type(builtins.__import__.__self__).__name__)
import pkg.deep.leaf as leaf                 # the chain of attributes, bound at the end
import pkg.deep.leaf
print(pkg.__name__, leaf.VALUE, pkg.deep.leaf is leaf)
from pkg import helper                       # a submodule through the fromlist
from pkg.deep import leaf as again
print(helper.VALUE, again is leaf, type(helper.__spec__.loader).__name__)
try:
    from pkg import nothing
except ImportError as e:
    print("ImportError")
try:
    import pkg.broken
except ZeroDivisionError:
    print("raised", "pkg.broken" in sys.modules)
import json                                  # not ours: the normal import
print(json.__name__, type(json.__spec__.loader).__name__)
import pkg.rel                               # relative imports: never a top-level namesake
print(pkg.rel.helper.__name__, pkg.rel.MARK)
"""


def test_the_import_statement_of_an_image_module(tmp_path):
    pkg = _package(tmp_path)
    (pkg / "deep").mkdir()
    (pkg / "deep" / "__init__.py").write_text("")
    (pkg / "deep" / "leaf.py").write_text("from pkg import helper\nVALUE = 'leaf'\n")
    (pkg / "broken.py").write_text("1 / 0\n")
    (pkg / "json.py").write_text("MARK = 'ours'\n")
    (pkg / "rel.py").write_text("from . import helper\nfrom .json import MARK\n")
    image.write(str(tmp_path / "img"), str(pkg))
    code = IMPORT_PROBE.format(root=str(tmp_path), bootstrap=image.bootstrap(str(tmp_path / "img")))
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == [
        "ImageFinder", "pkg leaf True", "helper True ImageFinder", "ImportError",
        "raised False", "json SourceFileLoader", "pkg.helper ours"]


EXT_PROBE = """
import marshal, posix, sys
{bootstrap}
import _json
print(_json.__file__, type(_json.__spec__.loader).__name__)
print(any(isinstance(k, str) and k.endswith("lib-dynload") for k in sys.path_importer_cache))
"""


def test_the_image_finds_its_extension_modules_while_they_are_unchanged(tmp_path):
    """The image names the shared object of the extension modules a create
    imports, so that the path finder does not list directories for them; a
    changed file is left to the normal import."""
    import _json
    pkg = _package(tmp_path)
    ext = tmp_path / "ext" / os.path.basename(_json.__file__)
    ext.parent.mkdir()
    ext.write_bytes(open(_json.__file__, "rb").read())
    image.write(str(tmp_path / "img"), str(pkg), {"_json": str(ext)})

    def probe():
        code = EXT_PROBE.format(bootstrap=image.bootstrap(str(tmp_path / "img")))
        r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    # the copy is on no sys.path entry: only the image can have found it
    assert probe() == [str(ext), "ExtensionFileLoader", "False"]
    with open(ext, "ab") as f:
        f.write(b"\0")   # changed since the image was made
    assert probe() == [_json.__file__, "ExtensionFileLoader", "True"]
    assert image.stale(str(tmp_path / "img")) == ["_json"]


def test_the_installed_image_knows_the_hot_extension_modules():
    found = image.extension_files(image.HOT_EXTENSIONS)
    assert set(found) == set(image.HOT_EXTENSIONS)
    assert found["pyrunc._libc"] == os.path.join(REPO, "pyrunc", os.path.basename(
        found["pyrunc._libc"]))
