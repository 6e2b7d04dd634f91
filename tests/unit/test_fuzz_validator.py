"""Property-based fuzzing of what create and `exec --process` do with a JSON
document before any process exists: read, parse, schema, semantic rules,
typing (Config/Process.from_dict) and planning (build_plan / exec_plan).

Whatever the document, only ConfigError or UsageError may come out, its
message one line, and a ConfigError's JSON path must name a place in the
document (the value, or the parent of a missing member).  The documents are
the real clients' configs and generated ones, mutated (tests/container/fuzzkit.py),
plus byte-level damage to the file itself.  Derandomized: CI sees the same
examples on every run.
"""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.errors import ConfigError, UsageError
from pyrunc.exec_into import exec_plan
from pyrunc.plan.build import build_plan
from pyrunc.spec import loader
from pyrunc.spec.default import default_spec
from tests.container import fuzzkit

REAL = fuzzkit.real_configs()
PROCS = fuzzkit.real_processes()
needs_fixtures = pytest.mark.skipif(not REAL or not PROCS, reason="real-configs fixtures missing")


def _default():
    doc = default_spec()
    doc["process"]["terminal"] = False
    return doc


CONFIG_BASES = list(REAL.values()) + [_default()]
PROCESS_BASES = list(PROCS.values()) + [_default()["process"]]
KEYS = fuzzkit.vocabulary(CONFIG_BASES + PROCESS_BASES)

FUZZ = settings(max_examples=250, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz-bundle")
    (path / "rootfs").mkdir()
    return str(path)


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))


def create_pipeline(bundle, data):
    """What `pyrunc create` does with config.json up to forking."""
    _write(os.path.join(bundle, "config.json"), data)
    config = loader.load_bundle(bundle)
    if config.process is None:
        raise UsageError("config.json: process is required to create a container")
    return build_plan(config, cid="fuzz-id")


def exec_pipeline(bundle, data):
    """What `pyrunc exec --process FILE` does with the file up to forking."""
    path = os.path.join(bundle, "process.json")
    _write(path, data)
    process = loader.load_process(path)
    config = loader.load_bundle(_default_bundle(bundle))
    return exec_plan(config, 1, process, 0, {})


def _default_bundle(bundle):
    path = os.path.join(bundle, "default")
    if not os.path.isdir(path):
        os.makedirs(os.path.join(path, "rootfs"))
        _write(os.path.join(path, "config.json"), json.dumps(_default()))
    return path


def assert_clear_failure(run, doc, data):
    """Run a pipeline: success, or one clear error, never anything else."""
    try:
        run(data)
    except ConfigError as e:
        assert fuzzkit.one_line(_without_doc_newlines(str(e), doc)), repr(str(e))
        if e.path and doc is not None:
            assert fuzzkit.path_fits(doc, e.path), f"error path {e.path!r} is not in the " \
                                                   f"document: {e}"
        elif doc is not None and isinstance(doc, dict):
            # a parsed object: the problem is somewhere in it, and the path says where
            assert e.message.startswith(("invalid rootfs", "open ")), \
                f"ConfigError without a JSON path: {e}"
        return e
    except UsageError as e:
        assert fuzzkit.one_line(str(e)), repr(str(e))
        return e
    # anything else propagates: hypothesis reports the traceback and shrinks the document
    return None


def _without_doc_newlines(message, doc):
    """A message may quote a value raw (runc does: "stat <path>: ..."); a newline
    that came with it is the document's, and the log writer flattens it."""
    for value in _strings(doc):
        if "\n" in value or "\r" in value:
            message = message.replace(value, "")
    return message


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


# --------------------------------------------------------------------- config.json

@needs_fixtures
@FUZZ
@given(doc=fuzzkit.mutated(CONFIG_BASES, KEYS))
def test_mutated_real_configs(bundle, doc):
    assert_clear_failure(lambda d: create_pipeline(bundle, d), doc, fuzzkit.dumps(doc))


@needs_fixtures
@FUZZ
@given(doc=fuzzkit.mutated(fuzzkit.generated_config(_default(), list(REAL.values())), KEYS,
                           min_mutations=0, max_mutations=2))
def test_generated_configs(bundle, doc):
    assert_clear_failure(lambda d: create_pipeline(bundle, d), doc, fuzzkit.dumps(doc))


# --------------------------------------------------------------------- process.json

@needs_fixtures
@FUZZ
@given(doc=fuzzkit.mutated(PROCESS_BASES, KEYS))
def test_mutated_exec_process(bundle, doc):
    assert_clear_failure(lambda d: exec_pipeline(bundle, d), doc, fuzzkit.dumps(doc))


# --------------------------------------------------------------------- the file itself

def _damage(data, draw):
    how = draw(st.sampled_from(["truncate", "insert", "digits", "nest", "bom"]))
    at = draw(st.integers(0, len(data)))
    if how == "truncate":
        return data[:at]
    if how == "insert":
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b'"', b"{", b"\\",
                                                 b",", b"]", b"\xed\xa0\x80"])) + data[at:]
    if how == "digits":
        return data.replace(b"1024", b"9" * 5000, 1) if b"1024" in data else data[:at] + b"1" * 5000
    if how == "nest":
        return b"[" * 200000 + b"]" * 200000
    return b"\xef\xbb\xbf" + data


@FUZZ
@given(st.data())
def test_damaged_config_file(bundle, data):
    raw = json.dumps(data.draw(st.sampled_from(CONFIG_BASES))).encode()
    damaged = _damage(raw, data.draw)
    assert_clear_failure(lambda d: create_pipeline(bundle, d), None, damaged)


@FUZZ
@given(st.data())
def test_damaged_process_file(bundle, data):
    raw = json.dumps(data.draw(st.sampled_from(PROCESS_BASES))).encode()
    damaged = _damage(raw, data.draw)
    assert_clear_failure(lambda d: exec_pipeline(bundle, d), None, damaged)


# --------------------------------------------------------------------- known shapes, pinned
# Each of these once escaped as something other than a ConfigError (or is a
# shape a fuzzer finds only by luck); kept as plain examples.

@pytest.mark.parametrize("data, words", [
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b'{"ociVersion": ' + b"9" * 5000 + b"}", "integer"),
    (b'{"ociVersion": NaN}', "ociVersion"),
])
def test_pathological_files(bundle, data, words):
    e = assert_clear_failure(lambda d: create_pipeline(bundle, d), None, data)
    assert isinstance(e, ConfigError) and words in str(e), e


@pytest.mark.parametrize("root_path", ["rootfs\x00x", "rootfs\ud800", "line\nbreak", "x" * 5000])
def test_unusable_root_path(bundle, root_path):
    doc = _default()
    doc["root"]["path"] = root_path
    e = assert_clear_failure(lambda d: create_pipeline(bundle, d), doc, fuzzkit.dumps(doc))
    assert isinstance(e, ConfigError) and e.path == "root.path", e


# A NUL byte or a lone surrogate cannot reach a syscall; found late, each one
# was a traceback (hooks, cgroupsPath: also a half-cleaned create).
_PLACES = [
    ("linux.cgroupsPath", lambda d, v: d["linux"].__setitem__("cgroupsPath", "a/" + v)),
    ("hooks.prestart[0].path", lambda d, v: d.__setitem__("hooks", {"prestart": [{"path": "/" + v}]})),
    ("hooks.poststop[0].args[1]",
     lambda d, v: d.__setitem__("hooks", {"poststop": [{"path": "/bin/true", "args": ["t", v]}]})),
    ("process.cwd", lambda d, v: d["process"].__setitem__("cwd", "/" + v)),
    ("process.env[0]", lambda d, v: d["process"].__setitem__("env", ["A=" + v])),
    ("hostname", lambda d, v: d.__setitem__("hostname", v)),
    ("mounts[0].destination", lambda d, v: d["mounts"][0].__setitem__("destination", "/" + v)),
    ("linux.resources.cpu.cpus", lambda d, v: d["linux"]["resources"].__setitem__("cpu", {"cpus": v})),
    ('linux.sysctl["net.a' , lambda d, v: d["linux"].__setitem__("sysctl", {"net.a" + v: "1"})),
]


@pytest.mark.parametrize("bad", ["a\x00b", "x\ud800"], ids=["nul", "surrogate"])
@pytest.mark.parametrize("where, edit", _PLACES, ids=[p[0] for p in _PLACES])
def test_unusable_strings_rejected_at_their_path(bundle, where, edit, bad):
    doc = _default()
    edit(doc, bad)
    e = assert_clear_failure(lambda d: create_pipeline(bundle, d), doc, fuzzkit.dumps(doc))
    assert isinstance(e, ConfigError) and e.path.startswith(where), e
    assert e.message.startswith("invalid argument"), e


def test_annotations_may_hold_anything(bundle):
    doc = _default()
    doc["annotations"] = {"k\x00": "v\x00", "s": "\ud800"}
    assert create_pipeline(bundle, fuzzkit.dumps(doc))


@pytest.mark.parametrize("bad", ["a\x00b", "x\ud800"], ids=["nul", "surrogate"])
def test_unusable_strings_in_exec_process(bundle, bad):
    proc = dict(_default()["process"], args=["echo", bad])
    e = assert_clear_failure(lambda d: exec_pipeline(bundle, d), proc, fuzzkit.dumps(proc))
    assert isinstance(e, ConfigError) and e.path == "args[1]", e
