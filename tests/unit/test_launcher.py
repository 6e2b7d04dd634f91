"""The `pyrunc` executable install.sh writes: python -I -S, with site's paths spelled out."""
import os
import subprocess
import sys

import pytest

from pyrunc import launcher

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTALLED = os.path.join(REPO, ".venv", "bin", "pyrunc")


def test_the_stub_is_a_direct_isolated_interpreter_call():
    lines = launcher.render_stub("/opt/boot/python3", "/opt/boot/lib").splitlines()
    assert lines[0] == "#!/opt/boot/python3 -IS"   # the kernel passes "-IS" as one argument
    assert lines[1] == launcher.MARKER and lines[-1] == f"import {launcher.MODULE}"
    assert "/usr/bin/env" not in "\n".join(lines)
    with pytest.raises(ValueError):
        launcher.render_stub("python3", "/lib")
    with pytest.raises(ValueError):
        launcher.render_stub("/opt/my venv/bin/python", "/lib")
    body = launcher.body(["/opt/venv/lib/site-packages", "/src"]).splitlines()
    assert ("sys.path += [p for p in ['/opt/venv/lib/site-packages', '/src'] "
            "if p not in sys.path]") in body
    assert body[-1] == "main_and_exit()"


def test_site_paths_are_what_site_adds_here():
    paths = launcher.site_paths(sys.executable)
    # the install passes the bare path bootdir.probe read, saving a run of Python
    from pyrunc import bootdir
    assert launcher.site_paths(sys.executable, bootdir.probe(sys.executable)[2]) == paths
    import _cffi_backend
    import pyrunc
    assert os.path.dirname(_cffi_backend.__file__) in paths
    assert os.path.dirname(os.path.dirname(pyrunc.__file__)) in paths
    assert not any(p.startswith("/usr/lib/python3") and "packages" not in p for p in paths)


def _isolation_trap(tmp_path):
    """A directory holding a fake pyrunc and sitecustomize: used only if the launcher
    took PYTHONPATH or the current directory into its import path."""
    evil = tmp_path / "evil"
    (evil / "pyrunc").mkdir(parents=True, exist_ok=True)
    (evil / "pyrunc" / "__init__.py").write_text("raise SystemExit('imported the wrong pyrunc')\n")
    (evil / "sitecustomize.py").write_text("raise SystemExit('ran sitecustomize')\n")
    return evil


def _run(exe, tmp_path, *args):
    evil = _isolation_trap(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(evil), "PYTHONSTARTUP": str(evil / "x")}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, cwd=evil)


def test_written_launcher_runs_pyrunc_isolated_from_the_callers_environment(tmp_path):
    target = tmp_path / "pyrunc"
    text = launcher.write(str(target), image=str(tmp_path / "_image"), boot=str(tmp_path / "boot"))
    assert f"_image = {str(tmp_path / '_image')!r}" in text
    assert launcher.body_of(str(target)) == text and os.access(target, os.X_OK)
    # the stub imports the body, compiled once, from the boot directory
    stub = target.read_text()
    assert stub.startswith(f"#!{tmp_path / 'boot' / 'python3'} -IS\n{launcher.MARKER}\n")
    assert stub.rstrip().endswith(f"import {launcher.MODULE}")
    assert (tmp_path / "boot" / "lib" / "__pycache__" /
            f"{launcher.MODULE}.{sys.implementation.cache_tag}.pyc").is_file()
    r = _run(str(target), tmp_path, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("pyrunc version ")
    r = _run(str(target), tmp_path, "--root", str(tmp_path / "root"), "state", "nope")
    assert r.returncode == 1 and "container nope does not exist" in r.stderr


@pytest.mark.skipif(not os.path.exists(INSTALLED), reason="needs .venv/bin/pyrunc (./install.sh)")
def test_installed_pyrunc_is_the_launcher(tmp_path):
    with open(INSTALLED) as f:
        first, second = f.readline(), f.readline()
    assert first == f"#!{os.path.join(REPO, 'pyrunc', '_boot', 'python3')} -IS\n", \
        f"{INSTALLED} is not pyrunc's launcher (pip rewrote it?): run ./install.sh"
    assert second.strip() == launcher.MARKER
    r = _run(INSTALLED, tmp_path, "--version")
    assert r.returncode == 0 and r.stdout.startswith("pyrunc version "), r.stderr


def test_the_launcher_works_where_the_interpreter_ignores_the_pth_file(tmp_path):
    """Another Python (or a boot directory without its python3._pth) starts with
    its default path: the launcher adds the venv's directories itself."""
    target = tmp_path / "pyrunc"
    launcher.write(str(target), image=str(tmp_path / "_image"), boot=str(tmp_path / "boot"))
    (tmp_path / "boot" / "python3._pth").unlink()
    r = _run(str(target), tmp_path, "--root", str(tmp_path / "root"), "state", "nope")
    assert r.returncode == 1 and "container nope does not exist" in r.stderr, r.stderr


def test_python_m_pyrunc_still_works():
    r = subprocess.run([sys.executable, "-m", "pyrunc", "--version"], capture_output=True,
                       text=True, cwd="/")
    assert r.returncode == 0 and r.stdout.startswith("pyrunc version "), r.stderr
