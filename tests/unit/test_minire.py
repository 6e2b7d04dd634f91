"""pyrunc.spec.minire must answer what re.search answers, for every pattern it accepts."""
import glob
import json
import os
import re

import pytest
from hypothesis import assume, given, settings, strategies as st

from pyrunc.spec import minire

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def schema_patterns():
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "pattern" and isinstance(v, str):
                    found.add(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    for path in glob.glob(os.path.join(REPO, "specs", "*.json")):
        with open(path) as f:
            walk(json.load(f))
    return sorted(found)


PATTERNS = schema_patterns()
ALPHABET = "aAbcuzZ019_-, :.\n\t\\]^[$*+?KMGBRLIMT\u00e9"
texts = st.text(alphabet=ALPHABET, max_size=12)


def test_the_schemas_patterns_are_all_handled_without_re():
    assert PATTERNS, "no pattern found in specs/"
    assert [p for p in PATTERNS if minire.compile(p) is None] == []


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATTERNS or ["^a$"]), texts)
def test_schema_patterns_agree_with_re(pattern, text):
    assert minire.search(minire.compile(pattern), text) == (re.search(pattern, text) is not None)


@pytest.mark.parametrize("pattern,text", [
    ("^RLIMIT_[A-Z]+$", "RLIMIT_NOFILE"), ("^RLIMIT_[A-Z]+$", "RLIMIT_NOFILE\n"),
    ("^RLIMIT_[A-Z]+$", "RLIMIT_NOFILE\n\n"), ("^RLIMIT_[A-Z]+$", "RLIMIT_"),
    ("^[cbup]$", "c"), ("^[cbup]$", "cb"), ("^[cbup]$", ""), ("^MB:[^\\n]*$", "MB:x\n"),
    ("^MB:[^\\n]*$", "MB:x\ny"), ("^[0-9, -]*$", "0-3, 7"), ("^[0-9, -]*$", "\n"),
    ("^[1-9][0-9]*[KMG]B$", "2MB"), ("^[1-9][0-9]*[KMG]B$", "02MB"), ("^$", "\n"),
    ("^a.b$", "a\nb"), ("^[]a]$", "]"), ("^[a-]$", "-"), ("^[^^]$", "^"), ("^a?b*$", ""),
])
def test_examples_agree_with_re(pattern, text):
    atoms = minire.compile(pattern)
    assert atoms is not None
    assert minire.search(atoms, text) == (re.search(pattern, text) is not None)


@pytest.mark.parametrize("pattern", ["a$", "^a", "^a|b$", "^(a)$", "^a{2}$", "^\\d$", "^[\\w]$",
                                     "^a*?$", "^[[:alpha:]]$", "^[z-a]$", "^a\\$", "^\\", "^[a$", "^[a--b]$"])
def test_what_it_does_not_handle_is_left_to_re(pattern):
    assert minire.compile(pattern) is None


# random patterns from the accepted grammar (and some outside it)
atom = st.one_of(
    st.sampled_from(list("abcZ0_-, :") + [".", "\\n", "\\t", "\\.", "\\-", "\\]", "\\\\"]),
    st.builds(lambda neg, body: "[" + ("^" if neg else "") + body + "]", st.booleans(),
              st.lists(st.sampled_from(["a", "b-d", "0-9", "A-Z", ",", " ", "-", "\\n", "\\]",
                                        "^", ".", "$", "]"]),
                       min_size=1, max_size=4).map("".join)))
patterns = st.lists(st.tuples(atom, st.sampled_from(["", "", "*", "+", "?"])), max_size=5).map(
    lambda parts: "^" + "".join(a + q for a, q in parts) + "$")


@pytest.mark.filterwarnings("ignore::FutureWarning")   # re on "--" in a class
@settings(max_examples=1500, deadline=None)
@given(patterns, texts)
def test_random_patterns_agree_with_re(pattern, text):
    try:
        compiled = re.compile(pattern)
    except re.error:
        assert minire.compile(pattern) is None
        return
    atoms = minire.compile(pattern)
    assume(atoms is not None)
    assert minire.search(atoms, text) == (compiled.search(text) is not None), (pattern, text)


def test_matching_stays_linear_on_long_input():
    atoms = minire.compile("^[a-z]*[a-z]*[a-z]*b$")
    assert minire.search(atoms, "a" * 20000) is False
