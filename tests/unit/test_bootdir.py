"""pyrunc/bootdir.py: the launcher's interpreter starts with sys.path from a
._pth file and the start-up encodings from a small directory, and is the
same Python for everything else."""
import os
import subprocess
import sys

import pytest

from pyrunc import bootdir

PROBE = ("import sys, encodings\n"
         "print(sys.flags.isolated, sys.flags.no_site)\n"
         "print(encodings.__file__)\n"
         "print(sorted(m for m in sys.modules if m.startswith('encodings.')))\n"
         "print('\\0'.join(sys.path))\n"
         # codecs that are not among the copies: found in the standard directory
         "print('é'.encode('cp1252'), 'bücher.example'.encode('idna'), 'x'.encode('utf-16-le'))\n")


@pytest.fixture
def boot(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    exe = bootdir.write(str(tmp_path / "boot"), sys.executable,
                        [str(site), str(tmp_path / "missing")])
    return tmp_path / "boot", exe, site


def _run(exe, *args, **kw):
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd="/", **kw)


def test_the_interpreter_starts_with_the_pth_path_and_the_copied_encodings(boot):
    root, exe, site = boot
    assert exe == str(root / "python3")
    assert os.path.realpath(exe) == os.path.realpath(sys.executable)
    r = _run(exe, "-c", PROBE, env={"PYTHONPATH": "/tmp/evil", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    flags, enc_file, startup, path, codecs = r.stdout.splitlines()
    assert flags == "1 1"   # a ._pth file implies -I -S
    assert enc_file == str(root / "lib" / "encodings" / "__init__.py")
    assert startup == "['encodings.utf_8']"   # the alias table waits for a lookup that needs it
    path = path.split("\0")
    assert path[0] == str(root / "lib") and path[-1] == str(site)
    assert "/tmp/evil" not in path and str(root.parent / "missing") not in path
    assert codecs == r"b'\xe9' b'xn--bcher-kva.example' b'x\x00'"


def test_pth_lines_keep_order_drop_duplicates_and_missing_dirs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    lines = bootdir.pth_lines("/boot", [str(a), str(tmp_path / "nope"), str(b)], [str(a)])
    assert lines == ["/boot/lib", str(a), str(b)]


def test_rewriting_replaces_each_file_in_place(boot, tmp_path):
    """install.sh rewrites the boot directory on every run: the result is the
    same directory, with no temporary files left."""
    root, exe, site = boot
    before = sorted(os.listdir(root / "lib" / "encodings"))
    bootdir.write(str(root), sys.executable, [str(site)])
    assert sorted(os.listdir(root / "lib" / "encodings")) == before
    assert not [n for n in os.listdir(root) if ".tmp" in n]
    assert _run(exe, "-c", "import encodings").returncode == 0


ALIASES = ("import codecs, encodings, sys\n"
           "print('encodings.aliases' in sys.modules)\n"
           # an alias: the table is imported, and is the package's own from then on
           "print(codecs.lookup('latin1').name, codecs.lookup('U8').name)\n"
           "print(encodings._aliases is sys.modules['encodings.aliases'].aliases)\n")


def test_the_alias_table_is_imported_at_the_first_lookup_that_needs_it(boot):
    root, exe, site = boot
    r = _run(exe, "-c", ALIASES)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["False", "iso8859-1 utf-8", "True"]


def test_encodings_aliases_is_an_attribute_of_the_package_as_before(boot):
    root, exe, site = boot
    r = _run(exe, "-c", "import encodings; print(encodings.aliases.aliases['latin1'])")
    assert (r.returncode, r.stdout) == (0, "latin_1\n"), r.stderr
    r = _run(exe, "-c", "import encodings; encodings.nothing")
    assert "has no attribute 'nothing'" in r.stderr


def test_a_table_imported_by_someone_else_is_consulted_even_for_utf_8(boot):
    """An alias added to the table before the first lookup of the name counts,
    as in the standard package."""
    root, exe, site = boot
    code = ("import encodings, encodings.aliases as a\n"
            "a.aliases['utf_8'] = 'latin_1'\n"
            "encodings._cache.clear()   # start-up's lookup of utf_8 is cached\n"
            "print(encodings.search_function('utf_8').name)\n")
    r = _run(exe, "-c", code)
    assert (r.returncode, r.stdout) == (0, "iso8859-1\n"), r.stderr


def test_an_unknown_layout_of_the_package_is_copied_unchanged():
    source = b"import codecs\nfrom . import aliases as table\n_aliases = table.aliases\n"
    assert bootdir.lazy_aliases(source, ["utf_8"]) == source
    stdlib = b"from . import aliases\n_aliases = aliases.aliases\n"
    assert bootdir.lazy_aliases(stdlib, []) == stdlib   # start-up names an alias: keep it eager
    lazy = bootdir.lazy_aliases(stdlib, ["utf_8"])
    assert b"from . import aliases\n_aliases" not in lazy
    assert b"_NOT_ALIASES = frozenset(('utf_8',))" in lazy
