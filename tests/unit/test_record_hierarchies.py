"""Records behave as the frozen dataclasses they stand for, whatever a class is
first used for (construction, fields(), replace(), asdict(), ==, hash, repr)
and whatever the order in which a hierarchy is defined and used."""
import dataclasses
import random

import pytest

from pyrunc.record import MISSING, Record, asdict, field, fields, replace


def _fresh():
    """A hierarchy nothing has used yet (each test makes its own)."""
    class Base(Record):
        a: int
        b: int = 1
        raw: dict = field(default_factory=dict, compare=False, repr=False)

    class Mid(Base):
        c: tuple = ()

    class Leaf(Mid):
        b: int = 7              # redefined: keeps its place, new default
        d: str = field(default="x", repr=False)

    return Base, Mid, Leaf


LEAF_FIELDS = [("a", MISSING), ("b", 7), ("raw", MISSING), ("c", ()), ("d", "x")]


FIRST_USES = {
    "construct": lambda cls: repr(cls(0)),
    "fields": lambda cls: [(f.name, f.default) for f in fields(cls)],
    "fields-of-instance": lambda cls: [f.name for f in fields(cls.__new__(cls))],
    "eq": lambda cls: _raw(cls, 0) == _raw(cls, 0),
    "hash": lambda cls: hash(_raw(cls, 0)),
    "repr": lambda cls: repr(_raw(cls, 0)),
    "replace": lambda cls: repr(replace(_raw(cls, 0), a=5)),
    "asdict": lambda cls: asdict(_raw(cls, 0)),
}


def _short(obj):
    """repr without the test function's qualname prefix."""
    return repr(obj).rpartition("<locals>.")[2]


def _raw(cls, a):
    """An instance made without Record.__init__ (so not its first use), as unpickling does."""
    obj = cls.__new__(cls)
    obj.__dict__.update({"a": a, "b": cls.b, "raw": {}, "c": (), "d": "x"})
    return obj


@pytest.mark.parametrize("use", sorted(FIRST_USES))
@pytest.mark.parametrize("which", ["base-first", "leaf-first"])
def test_any_first_use_gives_the_full_metadata(use, which):
    Base, Mid, Leaf = _fresh()
    if which == "base-first":
        FIRST_USES[use](Base)
    FIRST_USES[use](Leaf)
    assert [(f.name, f.default) for f in fields(Leaf)] == LEAF_FIELDS
    assert [f.name for f in fields(Mid)] == ["a", "b", "raw", "c"]
    assert _short(Leaf(0)) == "Leaf(a=0, b=7, c=())"
    assert _short(Mid(0)) == "Mid(a=0, b=1, c=())"
    assert Leaf(0, raw={"k": 1}) == Leaf(0) and hash(Leaf(0, raw={"k": 1})) == hash(Leaf(0))
    assert replace(Leaf(0), c=(1,)) == Leaf(0, 7, {}, (1,), "x")
    assert asdict(Leaf(2)) == {"a": 2, "b": 7, "raw": {}, "c": (), "d": "x"}
    with pytest.raises(TypeError):
        Mid(0, d="x")
    with pytest.raises(TypeError):
        Leaf()


def test_a_subclass_defined_after_its_base_was_used_has_its_own_fields():
    Base, Mid, _ = _fresh()
    assert Mid(1).c == ()

    class Late(Mid):
        e: int = 3

    assert _short(Late(0)) == "Late(a=0, b=1, c=(), e=3)"
    assert [f.name for f in fields(Mid)] == ["a", "b", "raw", "c"]     # Mid's untouched
    with pytest.raises(TypeError):
        Mid(0, e=1)


def test_class_attributes_are_the_defaults_before_and_after_first_use():
    # code reads defaults off the class (Step.phase, RunHooks.phase, ...)
    for used in (False, True):
        Base, Mid, Leaf = _fresh()
        if used:
            Leaf(0)
        assert (Base.b, Mid.b, Leaf.b, Leaf.c, Leaf.d) == (1, 1, 7, (), "x")
        for cls, name in ((Base, "a"), (Leaf, "a"), (Base, "raw"), (Leaf, "raw")):
            assert not hasattr(cls, name)       # no default: no class attribute


# --- the same as dataclasses, for random hierarchies ---------------------------

NAMES = "abcde"


def _random_hierarchy(rnd):
    """[(base index or None, [(name, kind, option)])], kinds: plain, default, field."""
    classes, inherited = [], []
    for k in range(rnd.randint(1, 4)):
        base_i = rnd.choice([None, *range(k)])
        names = set() if base_i is None else inherited[base_i]
        own = []
        for name in rnd.sample(NAMES, rnd.randint(0, 3)):
            # not a bare `name: type` redefining a base's field: dataclasses takes
            # the base's class attribute as its default there, a record does not
            kind = rnd.choice(["default", "field"] if name in names else
                              ["plain", "default", "field"])
            opt = None
            if kind == "default":
                opt = rnd.randint(0, 3)
            elif kind == "field":
                opt = {}
                r = rnd.random()
                if r < 0.35:
                    opt["default"] = rnd.randint(0, 3)
                elif r < 0.7:
                    opt["default_factory"] = rnd.choice([dict, list, tuple])
                if rnd.random() < 0.3:
                    opt["compare"] = False
                if rnd.random() < 0.3:
                    opt["repr"] = False
            own.append((name, kind, opt))
        classes.append((base_i, own))
        inherited.append(names | {name for name, _, _ in own})
    return classes


def _build(spec, record, between=lambda made: None):
    made = []
    for i, (base_i, own) in enumerate(spec):
        ns = {"__annotations__": {}}
        for name, kind, opt in own:
            ns["__annotations__"][name] = int
            if kind == "default":
                ns[name] = opt
            elif kind == "field":
                ns[name] = field(**opt) if record else dataclasses.field(**opt)
        if record:
            base = Record if base_i is None else made[base_i]
            made.append(type(f"C{i}", (base,), ns))
        else:
            bases = () if base_i is None else (made[base_i],)
            made.append(dataclasses.dataclass(frozen=True)(type(f"C{i}", bases, ns)))
        between(made)
    return made


def _observe(cls, rnd, get_fields, as_dict, do_replace):
    seen = []
    for name in NAMES:
        seen.append(("class attribute", name, getattr(cls, name, "<none>")))
    seen.append(("fields", [(f.name, f.default, f.default_factory, f.compare, f.repr)
                            for f in get_fields(cls)]))
    args = [rnd.randint(0, 2) for _ in range(rnd.randint(0, 5))]
    kwargs = {k: rnd.randint(0, 2) for k in rnd.sample(NAMES + "z", rnd.randint(0, 2))}
    try:
        one, two = cls(*args, **kwargs), cls(*args, **kwargs)
    except TypeError:
        seen.append("TypeError")
        return seen
    try:
        seen.append(("hash", hash(one) == hash(two)))
    except TypeError:                       # a compared dict or list
        seen.append("unhashable")
    seen += [("repr", repr(one)), ("eq", one == two), ("asdict", as_dict(one)),
             ("replace", repr(do_replace(one, **kwargs)))]
    return seen


class _AsRecordField:
    """A dataclasses.Field as pyrunc.record shows one (its MISSING for dataclasses')."""

    def __init__(self, f):
        self.name, self.compare, self.repr = f.name, f.compare, f.repr
        self.default = MISSING if f.default is dataclasses.MISSING else f.default
        self.default_factory = (MISSING if f.default_factory is dataclasses.MISSING
                                else f.default_factory)


def _dc_fields(cls):
    return [_AsRecordField(f) for f in dataclasses.fields(cls)]


def test_random_hierarchies_behave_as_frozen_dataclasses():
    checked = 0
    for seed in range(500):
        rnd = random.Random(seed)
        spec = _random_hierarchy(rnd)
        try:
            dcs = _build(spec, record=False)
        except TypeError:       # not a valid dataclass: a default before a required field
            continue
        # some classes first used while their subclasses are still to be made
        use = random.Random(seed)
        recs = _build(spec, record=True, between=lambda made: use.random() < 0.5 and _observe(
            made[use.randrange(len(made))], use, fields, asdict, replace))
        # classes used in a random order, some more than once, some never
        order = [rnd.randrange(len(spec)) for _ in range(5)]
        want = [_observe(dcs[i], random.Random(j), _dc_fields, dataclasses.asdict,
                         dataclasses.replace) for j, i in enumerate(order)]
        got = [_observe(recs[i], random.Random(j), fields, asdict, replace)
               for j, i in enumerate(order)]
        assert got == want, f"seed {seed}: {spec}"
        checked += 1
    assert checked > 200
