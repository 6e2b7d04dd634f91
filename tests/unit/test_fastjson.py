"""pyrunc.fastjson must be json, byte for byte, for what pyrunc reads and writes."""
import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc import fastjson

scalars = (st.none() | st.booleans() | st.integers() | st.text()
           | st.floats(allow_nan=True, allow_infinity=True))
keys = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25)


def same(a, b):
    """Equality that treats NaN as equal to itself (documents may hold it)."""
    return json.dumps(a, sort_keys=False) == json.dumps(b, sort_keys=False)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_dumps_is_json_dumps(doc):
    assert fastjson.dumps(doc) == json.dumps(doc)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_dumps_indented_is_json_dumps_indent_2(doc):
    assert fastjson.dumps(doc, indent=2) == json.dumps(doc, indent=2)
    assert fastjson.dumps(doc, indent=4) == json.dumps(doc, indent=4)


@settings(max_examples=400, deadline=None)
@given(documents, st.sampled_from(["", " ", "\n", " \t\r\n "]))
def test_loads_reads_what_json_writes(doc, ws):
    for text in (json.dumps(doc), json.dumps(doc, indent=2), ws + json.dumps(doc) + ws):
        assert same(fastjson.loads(text), json.loads(text))


def _outcome(fn, text):
    try:
        return "ok", json.dumps(fn(text))
    except Exception as e:  # noqa: BLE001 - the exception itself is what is compared
        return type(e), str(e)


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet='{}[]",:0123456789.eE+-truefalsn \t\r\nNaIiy\\u\ufeffx\x00', max_size=30))
def test_loads_accepts_and_rejects_exactly_like_json(text):
    assert _outcome(fastjson.loads, text) == _outcome(json.loads, text)


@pytest.mark.parametrize("text", ["", " ", "{", '{"a": 1} x', '{"a": 1}{}', "\ufeff{}", "[1,]",
                                  '{"a": NaN, "b": -Infinity}', '"\\ud800"', "1e400", "-0",
                                  '{"a": 1, "a": 2}', '"tab\tinside"', b'{"a": 1}'])
def test_loads_edge_cases(text):
    assert _outcome(fastjson.loads, text) == _outcome(json.loads, text)


@pytest.mark.parametrize("obj", [object(), {"a": {1, 2}}, {(1, 2): 3}, float("nan")])
def test_dumps_errors_and_specials_are_json_s(obj):
    assert _outcome(lambda o: fastjson.dumps(o), obj) == _outcome(lambda o: json.dumps(o), obj)
    assert (_outcome(lambda o: fastjson.dumps(o, indent=2), obj)
            == _outcome(lambda o: json.dumps(o, indent=2), obj))


def test_circular_reference_is_json_s_error_and_does_not_stick():
    a = []
    a.append(a)
    with pytest.raises(ValueError, match="Circular reference"):
        fastjson.dumps(a)
    with pytest.raises(ValueError, match="Circular reference"):
        fastjson.dumps(a, indent=2)
    assert fastjson.dumps([[1], [1]]) == "[[1], [1]]"   # no marker left behind


def test_state_documents_round_trip_exactly():
    """The documents pyrunc writes: state.json, `pyrunc state` output, log lines."""
    state = {"id": "c1", "pid": 4242, "bundle": "/b", "rootfs": "/b/rootfs",
             "created": "2026-01-01T00:00:00.000000001Z", "owner": "", "annotations": {"k": "v\u00e9"},
             "init_start_time": 123456, "new_pid_ns": True, "status_hint": "created",
             "config": {"ociVersion": "1.2.0", "process": {"args": ["sh", "-c", "echo \"hi\""],
                                                           "env": [], "terminal": False},
                        "linux": {"resources": {"cpu": {"quota": -1, "period": 100000},
                                                "memory": {"swappiness": 0.5}}}},
             "cgroups": {}, "cgroups_created": []}
    text = fastjson.dumps(state)
    assert text == json.dumps(state)
    assert fastjson.loads(text) == state
    oci = {"ociVersion": "1.2.0", "id": "c1", "pid": 0, "status": "stopped",
           "bundle": "/b", "rootfs": "/b/rootfs", "created": "x", "owner": "",
           "annotations": {"a": "b"}}
    assert fastjson.dumps(oci, indent=2) == json.dumps(oci, indent=2)
    assert fastjson.dumps("line\n\"quoted\" \u2603") == json.dumps("line\n\"quoted\" \u2603")
    assert math.isnan(fastjson.loads("NaN"))


def test_fastjson_does_not_import_json():
    import subprocess
    import sys
    repo = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    code = (f"import sys; sys.path.insert(0, {repo!r}); from pyrunc import fastjson; "
            "fastjson.dumps(fastjson.loads('{\"a\": [1, 2.5, null]}'), indent=2); "
            "fastjson.dumps({'a': 1}); print('json' in sys.modules, 're' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr
