"""pyrunc.pathstr does what posixpath (and os.makedirs) do, for str paths."""
import os
import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc import pathstr

parts = st.text(alphabet="/.ab", max_size=8)


@settings(max_examples=400)
@given(parts, st.lists(parts, max_size=3))
def test_join(a, rest):
    assert pathstr.join(a, *rest) == posixpath.join(a, *rest)


@settings(max_examples=400)
@given(parts)
def test_dirname_basename_normpath_abspath(p):
    assert pathstr.dirname(p) == posixpath.dirname(p)
    assert pathstr.basename(p) == posixpath.basename(p)
    assert pathstr.normpath(p) == posixpath.normpath(p)
    assert pathstr.abspath(p) == posixpath.abspath(p)
    assert pathstr.isabs(p) == posixpath.isabs(p)


def test_exists_isdir_isfile(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    (tmp_path / "link").symlink_to("nowhere")
    for p in (str(tmp_path), str(f), str(tmp_path / "link"), str(tmp_path / "none"), "a\0b"):
        assert (pathstr.exists(p), pathstr.isdir(p), pathstr.isfile(p)) == \
            (posixpath.exists(p), posixpath.isdir(p), posixpath.isfile(p))


def test_makedirs(tmp_path):
    leaf = tmp_path / "a" / "b" / "c"
    pathstr.makedirs(str(leaf), 0o700)
    assert leaf.is_dir() and leaf.stat().st_mode & 0o777 == 0o700 & ~_umask()
    pathstr.makedirs(str(leaf), 0o700, exist_ok=True)
    with pytest.raises(FileExistsError):
        pathstr.makedirs(str(leaf))
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        pathstr.makedirs(str(tmp_path / "file"), exist_ok=True)
    with pytest.raises(NotADirectoryError):
        pathstr.makedirs(str(tmp_path / "file" / "x"))


def test_fsencode():
    for s in ("abc", "é", "\udcff", b"raw"):
        assert pathstr.fsencode(s) == os.fsencode(s)


def _umask():
    old = os.umask(0)
    os.umask(old)
    return old
