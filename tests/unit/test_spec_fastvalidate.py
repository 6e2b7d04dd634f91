"""pyrunc.spec.fastvalidate against jsonschema, on the same schema files in specs/.

validate() runs the fast validator; validate_with_jsonschema() runs jsonschema.
For the real client configs, runc's default spec, a config using nearly every
member, and thousands of mutations of each (single ones for every member and
every kind of wrong value, random combinations from hypothesis), both must
report the same errors -- and so the same first error, path and message.
"""
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from pyrunc.errors import ConfigError
from pyrunc.spec import fastvalidate as fv
from pyrunc.spec import validate as v
from pyrunc.spec.default import default_spec
from test_spec_oracle import FIXTURES, REPO, _walk, documents

SPECS = os.path.join(REPO, "specs")


# -- comparing the two ----------------------------------------------------------

def _key(error):
    path, kind, detail, _inst = error
    return repr(path), kind, repr(detail), v.describe(error)


def agree(doc, kind):
    """Assert both validators report the same; return the number of errors."""
    fast, slow = v.fast_errors(doc, kind), v.jsonschema_errors(doc, kind)
    # a keyword jsonschema reports that the fast validator does not model
    assert not [e for e in slow if e[1].startswith("jsonschema:")], slow
    assert sorted(map(_key, fast)) == sorted(map(_key, slow))
    if fast:
        assert v.describe(v.first_error(doc, fast)) == v.describe(v.first_error(doc, slow))
    return len(fast)


def raised(validate, doc, kind):
    try:
        validate(doc, kind)
    except ConfigError as e:
        return e.path, e.message
    return None


def replaced(node, path, change):
    """`node` with change(value at path) in its place; only the containers on
    the path are copied, so member order (which ranks errors) is kept."""
    if not path:
        return change(node)
    copy = list(node) if isinstance(node, list) else dict(node)
    copy[path[0]] = replaced(node[path[0]], path[1:], change)
    return copy


def deleted(doc, path):
    return replaced(doc, path[:-1], lambda parent: {k: x for k, x in parent.items()
                                                    if k != path[-1]})


# -- the corpus -------------------------------------------------------------------

DOCS = documents()
# one value of every JSON type, and the edges of the ranges, enums and patterns in specs/
ANY_TYPE = [None, True, 7, 1.5, "x", ["x"], {"k": 1}]
EDGES = {
    int: [-1, 0, 1.0, -1.5, 2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64, -2 ** 63 - 1, 1e30,
          float("inf"), float("nan")],
    str: ["", "bogus-value", "RLIMIT_NOFILE\n", "MB:1\n", "MB:1\n2", "c", "cc", "0-3\n", "2MB"],
    list: [[], [None], [{}], ["x", 1]],
    dict: [{}, {"xExtraMember": {"n": True}}],
}


def single_mutations():
    """(label, kind, path, doc) for every member shape of every base document.

    A shape (path with indices as 0, type of value) is mutated once, in the
    smallest document that has it: the long seccomp and mount lists add
    nothing but time.
    """
    seen = set()
    for label, kind, doc in sorted(DOCS, key=lambda d: len(json.dumps(d[2]))):
        yield label, kind, [], dict(doc, xExtraMember=1)
        for path, value in _walk(doc, []):
            shape = (kind, tuple(0 if isinstance(p, int) else p for p in path),
                     type(value).__name__)
            if shape in seen:
                continue
            seen.add(shape)
            if isinstance(path[-1], str):
                yield label, kind, path, deleted(doc, path)
            edges = EDGES.get(type(value), [])
            if isinstance(value, dict):
                edges = edges + [dict(value, xExtraMember=[1])]
            if isinstance(value, str):
                edges = edges + [value + "\n", " " + value]
            for new in ANY_TYPE + edges:
                if type(new) is not type(value) or new != value:
                    yield label, kind, path, replaced(doc, path, lambda _old, n=new: n)


SINGLE = list(single_mutations())


def test_corpus_covers_every_document_and_probes_something():
    labels = {label for label, *_ in SINGLE}
    assert labels == {label for label, *_ in DOCS}
    assert len(DOCS) >= 5 + (10 if FIXTURES else 0)
    invalid = sum(1 for _l, kind, _p, doc in SINGLE if not v.fast_errors(doc, kind))
    assert len(SINGLE) > 2000
    assert len(SINGLE) // 5 < invalid < len(SINGLE) - len(SINGLE) // 5


@pytest.mark.parametrize("label, kind, doc", [pytest.param(*d, id=d[0]) for d in DOCS])
def test_base_documents_are_valid_for_both(label, kind, doc):
    assert agree(doc, kind) == 0


@pytest.mark.parametrize("chunk", range(4))
def test_agrees_on_every_single_mutation(chunk):
    for label, kind, path, doc in SINGLE[chunk::4]:
        try:
            agree(doc, kind)
        except AssertionError as e:
            raise AssertionError(f"{label} {path}: {e}") from None


def test_ties_at_one_path_are_probed():
    # the first error must be chosen the same way when several errors share one
    # path (a float below a minimum: type and minimum); make sure that happens
    ties = 0
    for _label, kind, _path, doc in SINGLE:
        errors = v.fast_errors(doc, kind)
        if errors:
            first = v.first_error(doc, errors)
            ties += sum(e[0] == first[0] for e in errors) > 1
    assert ties > 20


def test_validate_and_validate_with_jsonschema_raise_alike():
    rng = random.Random(7)
    picked = rng.sample(SINGLE, 300)
    assert sum(raised(v.validate, doc, kind) is not None for _l, kind, _p, doc in picked) > 50
    for label, kind, path, doc in picked:
        assert raised(v.validate, doc, kind) == raised(v.validate_with_jsonschema, doc, kind), \
            (label, path)


# -- random combinations (hypothesis) -----------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 65, max_value=2 ** 65)
    | st.floats() | st.sampled_from(["", "RLIMIT_CORE", "SCMP_ACT_LOG", "pid", "c", "2MB", "x\n"])
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6)


@st.composite
def mutated_documents(draw):
    label, kind, doc = draw(st.sampled_from(DOCS))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p, _value in _walk(doc, [])]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        if isinstance(path[-1], str) and draw(st.booleans()):
            doc = deleted(doc, path)
        else:
            doc = replaced(doc, path, lambda _old, n=draw(JSON): n)
    return kind, doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_agrees_on_random_combinations(case):
    kind, doc = case
    agree(doc, kind)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(v.SCHEMA_NAMES), JSON)
def test_agrees_on_arbitrary_json(kind, doc):
    agree(doc, kind)


# -- schema files the fast validator must refuse ---------------------------------------

def _load_with(tmp_path, name, change):
    directory = tmp_path / "specs"
    shutil.copytree(SPECS, directory)
    path = directory / name
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))
    return fv.SchemaSet.load(str(directory))


def _set(*keys, value):
    def change(schema):
        node = schema
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return change


@pytest.mark.parametrize("name, change, words", [
    ("config.schema.json", _set("properties", "hostname", "maxLength", value=64), "maxLength"),
    ("config.schema.json", _set("properties", "ociVersion", "format", value="x"), "format"),
    ("config.schema.json", _set("oneOf", value=[{}]), "oneOf"),
    ("config.schema.json", _set("patternProperties", value={"^x": {}}), "patternProperties"),
    ("config.schema.json", _set("additionalProperties", value=False), "additionalProperties"),
    # in a definition nobody references: refused all the same
    ("defs.schema.json", _set("definitions", "unused", value={"const": 1}), "const"),
    ("defs.schema.json", _set("definitions", "uint16", "minimum", value="0"), "minimum"),
    ("defs.schema.json", _set("definitions", "uint16", "type", value="int"), "type"),
    ("defs.schema.json", _set("definitions", "strings", "items", value=[{}]), "items"),
    ("linux.schema.json", _set("properties", "mountLabel", value=True), "mountLabel"),
    ("linux.schema.json", _set("definitions", "seccompArch", "enum", value=[1, 2]), "enum"),
    # draft-07 would ignore the minimum beside $ref
    ("process.schema.json", _set("properties", "oomScoreAdj",
                                 value={"$ref": "defs.schema.json#/definitions/int32",
                                        "minimum": 0}), "beside"),
    ("process.schema.json", _set("properties", "cwd",
                                 value={"$ref": "defs.schema.json#/definitions/nope"}),
     "points at nothing"),
    ("process.schema.json", _set("properties", "cwd", value={"$ref": "other.json"}),
     "no schema file"),
    ("process.schema.json", _set("properties", "cwd", value={"$ref": "#/definitions/a"}),
     "points at nothing"),
    ("process.schema.json", _set("definitions", value={"a": {"$ref": "#/definitions/b"},
                                                       "b": {"$ref": "#/definitions/a"}}),
     "loop"),
    ("process.schema.json", _set("properties", "cwd", value={"$id": "x", "type": "string"}),
     "$id"),
    ("process.schema.json", _set("$id", value="https://pyrunc.invalid/specs/other.json"),
     "$id"),
    ("process.schema.json", _set("$schema", value="https://json-schema.org/draft/2020-12/schema"),
     "draft-07"),
])
def test_unsupported_schema_is_refused_at_load(tmp_path, name, change, words):
    with pytest.raises(fv.UnsupportedSchema) as info:
        _load_with(tmp_path, name, change)
    assert words in str(info.value)


def test_every_keyword_in_specs_is_implemented_or_an_annotation():
    used = set()

    def scan(node):
        if isinstance(node, dict):
            for key, value in node.items():
                used.add(key)
                # property names are not keywords; their schemas are scanned
                scan(list(value.values()) if key in ("properties", "definitions") else value)
        elif isinstance(node, list):
            for item in node:
                scan(item)
    for name in os.listdir(SPECS):
        with open(os.path.join(SPECS, name)) as f:
            scan(json.load(f))
    assert used <= set(fv._BUILDERS) | fv._ANNOTATIONS | {"$ref", "$id"}, used
    # and nothing implemented goes untested by the corpus above
    assert set(fv._BUILDERS) <= used


@pytest.fixture
def edited_specs(tmp_path, monkeypatch):
    """edit(name, change): both validators now read an edited copy of specs/."""
    def edit(name, change):
        _load_with(tmp_path, name, change)
        monkeypatch.setattr(v, "specs_dir", lambda: str(tmp_path / "specs"))
        monkeypatch.setattr(v, "_validators", {})
        monkeypatch.setattr(v, "_fast", None)
    return edit


def test_additional_properties_skip_named_ones(edited_specs):
    # not combined in specs/ today: "additionalProperties" beside "properties"
    # must leave the named members to their own schemas
    edited_specs("config.schema.json", _set("additionalProperties", value={"type": "integer"}))
    assert agree({"ociVersion": "1", "hostname": "h", "x": 1}, "config") == 0
    doc = {"ociVersion": 1, "hostname": "h", "x": "y", "root": 5}
    assert agree(doc, "config") == 3
    assert [e[0] for e in v.fast_errors(doc, "config")] == [["ociVersion"], ["root"], ["x"]]


def test_recursive_schema_is_followed(edited_specs):
    # not used by specs/ today, but nothing in the compiler should loop on it
    tree = {"type": "object", "properties": {"name": {"type": "string"},
                                             "children": {"type": "array",
                                                          "items": {"$ref": "#/definitions/tree"}}}}

    def change(schema):
        schema["properties"]["tree"] = {"$ref": "#/definitions/tree"}
        schema["definitions"] = {"tree": tree}
    edited_specs("config.schema.json", change)
    doc = {"ociVersion": "1", "tree": {"children": [{"children": [{"name": 5}]}]}}
    assert agree(doc, "config") == 1
    assert v.fast_errors(doc, "config") == [
        (["tree", "children", 0, "children", 0, "name"], "type", "string", 5)]


def test_pattern_is_searched_like_jsonschema():
    # Python's "$" matches before a final newline; jsonschema uses re.search,
    # so "RLIMIT_CORE\n" passes both (and must keep doing so in both)
    proc = default_spec()["process"]
    proc["rlimits"][0]["type"] = "RLIMIT_CORE\n"
    assert agree(proc, "process") == 0
    proc["rlimits"][0]["type"] = "RLIMIT_CORE\n\n"
    assert agree(proc, "process") == 1


def test_unknown_schema_name():
    with pytest.raises(ValueError):
        v.fast_errors({}, "nope")


# -- import budget -----------------------------------------------------------------

PROBE = """
import sys, time
t = time.perf_counter()
from pyrunc.spec.loader import load_bundle
load_bundle(sys.argv[1])
took = (time.perf_counter() - t) * 1000
print(took, "jsonschema" in sys.modules, "pyrunc.spec.fastvalidate" in sys.modules)
"""
# Measured on the development host (Debian 12, python 3.11): import + load_bundle
# of docker's config ~25 ms, almost all of it pyrunc.spec.config and semantic
# (dataclasses); schema loading + validation ~1 ms of that.  3x margin.
BUDGET_MS = 75


def test_load_bundle_imports_no_jsonschema_and_is_quick(tmp_path):
    if FIXTURES is None:
        pytest.skip("shared/fixtures/real-configs missing")
    with open(os.path.join(FIXTURES, "docker-create-config.json")) as f:
        config = json.load(f)
    config["root"]["path"] = "rootfs"
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(config))
    runs = []
    for _ in range(3):   # best of three: a busy test machine only ever adds time
        out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
        runs.append(out)
    assert {tuple(r[1:]) for r in runs} == {("False", "True")}
    assert min(float(r[0]) for r in runs) < BUDGET_MS, runs


def test_schema_load_and_validation_cost():
    # the part this module owns: read + compile specs/ and check docker's config
    probe = ("import json, sys, time\n"
             "doc = json.load(open(sys.argv[1]))\n"
             "t = time.perf_counter()\n"
             "from pyrunc.spec.validate import validate\n"
             "validate(doc, 'config')\n"
             "print((time.perf_counter() - t) * 1000)\n")
    if FIXTURES is None:
        pytest.skip("shared/fixtures/real-configs missing")
    path = os.path.join(FIXTURES, "docker-create-config.json")
    took = min(float(subprocess.run([sys.executable, "-c", probe, path], cwd=REPO,
                                    capture_output=True, text=True, check=True).stdout)
               for _ in range(3))
    assert took < 10, took
