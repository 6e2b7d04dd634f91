"""pyrunc/image.py: the launcher imports pyrunc's modules from one compiled file,
never a stale one."""
import os
import subprocess
import sys
import time

import pytest

from pyrunc import image, launcher

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# run in `python -I -S`: the finder's source as the launcher carries it, then
# import pkg.sub and report where each module came from
PROBE = """
import marshal, posix, sys
{finder}
sys.path.insert(0, {root!r})
try:
    sys.meta_path.insert(0, ImageFinder({image!r}))
except (OSError, ValueError) as e:
    print("no image:", e)
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
    import inspect
    code = PROBE.format(finder=inspect.getsource(image.ImageFinder), root=str(tmp_path),
                        image=str(img))
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    return lines[0] if lines[0].startswith("no image") else None, \
        {ln.split()[0]: ln.split()[1:] for ln in lines if not ln.startswith("no image")}


def test_modules_come_from_the_image(tmp_path):
    pkg = _package(tmp_path)
    image.write(str(tmp_path / "img"), str(pkg))
    _, got = _probe(tmp_path, tmp_path / "img")
    assert got["pkg.sub"] == ["ImageFinder", str(pkg / "sub.py"), "sub:helper"]
    assert got["pkg"] == ["ImageFinder", str(pkg / "__init__.py"), "init"]


def test_an_edited_module_is_imported_from_its_source(tmp_path):
    pkg = _package(tmp_path)
    image.write(str(tmp_path / "img"), str(pkg))
    time.sleep(0.01)
    (pkg / "helper.py").write_text("VALUE = 'edited'\n")   # same size, newer mtime
    _, got = _probe(tmp_path, tmp_path / "img")
    assert got["pkg.helper"][0] == "SourceFileLoader" and got["pkg.helper"][2] == "edited"
    assert got["pkg.sub"] == ["ImageFinder", str(pkg / "sub.py"), "sub:edited"]


def test_a_module_gone_or_new_since_is_the_normal_import(tmp_path):
    pkg = _package(tmp_path)
    (pkg / "old.py").write_text("")
    image.write(str(tmp_path / "img"), str(pkg))
    (pkg / "old.py").unlink()
    (pkg / "sub.py").write_text("from . import new\nVALUE = new.VALUE\n")
    (pkg / "new.py").write_text("VALUE = 'new'\n")
    _, got = _probe(tmp_path, tmp_path / "img")
    assert got["pkg.sub"][0] == "SourceFileLoader" and got["pkg.sub"][2] == "new"
    r = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, "
                        f"{str(tmp_path)!r}); import pkg.old"], capture_output=True, text=True)
    assert "No module named 'pkg.old'" in r.stderr


@pytest.mark.parametrize("content", [b"", b"PYRUNCI1\0\0\0\0" + bytes(8), b"not an image at all"])
def test_a_foreign_image_is_refused_and_imports_still_work(tmp_path, content):
    pkg = _package(tmp_path)
    (tmp_path / "img").write_bytes(content)
    refused, got = _probe(tmp_path, tmp_path / "img")
    assert refused and got["pkg.sub"][0] == "SourceFileLoader"


def test_no_image_file(tmp_path):
    _package(tmp_path)
    refused, got = _probe(tmp_path, tmp_path / "missing")
    assert refused and got["pkg"][0] == "SourceFileLoader"


def test_the_image_holds_every_module_of_pyrunc():
    names = {name for name, _, _ in image.modules(os.path.join(REPO, "pyrunc"))}
    assert {"pyrunc", "pyrunc.cli", "pyrunc.executor.launch", "pyrunc.plan.steps"} <= names
    assert not any("__pycache__" in n or n.endswith("_libc") for n in names)


def test_the_launcher_runs_pyrunc_from_its_image(tmp_path):
    """Through the real launcher text: pyrunc's modules are the image's, and a
    traceback still shows the source (tracebacks read __file__)."""
    img = tmp_path / "_image"
    image.write(str(img), os.path.join(REPO, "pyrunc"))
    text = launcher.render(sys.executable, launcher.site_paths(sys.executable), str(img))
    text = text.replace("main_and_exit()\n", "") + (
        "import pyrunc.cli, pyrunc.lifecycle\n"
        "print(type(pyrunc.lifecycle.__spec__.loader).__name__)\n"
        "pyrunc.lifecycle.write_pid_file('/nonexistent/dir/pid', 1)\n")
    exe = tmp_path / "launcher"
    exe.write_text(text)
    r = subprocess.run([sys.executable, "-I", "-S", str(exe)], capture_output=True, text=True)
    assert r.stdout.splitlines() == ["ImageFinder"], r.stderr
    assert "failed to write pid file" in r.stderr and "raise RuntimeFailure(" in r.stderr
