"""pyrunc.record behaves as the frozen dataclasses it replaced, where the code relies on it."""
import copy
import dataclasses
import pickle

import pytest

from pyrunc.record import (MISSING, Enum, FrozenInstanceError, Record, asdict, field, fields,
                           is_record, replace)


class Point(Record):
    x: int
    y: int = 0
    tags: tuple = ()
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class DPoint:
    x: int
    y: int = 0
    tags: tuple = ()
    raw: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


def test_construction_like_a_dataclass():
    assert Point(1).x == 1 and Point(1).y == 0 and Point(1).raw == {}
    assert Point(1, 2, ("a",)).tags == ("a",)
    assert Point(y=5, x=1).y == 5
    assert Point(1).raw is not Point(1).raw          # a fresh default per object
    assert repr(Point(1, 2, ("a",), {"k": 1})) == repr(DPoint(1, 2, ("a",), {"k": 1})).replace(
        "DPoint", "Point")


@pytest.mark.parametrize("args,kwargs", [((), {}), ((1, 2, 3, 4, 5), {}), ((1,), {"x": 2}),
                                         ((1,), {"nope": 2})])
def test_bad_arguments_are_type_errors_as_with_dataclasses(args, kwargs):
    with pytest.raises(TypeError):
        DPoint(*args, **kwargs)
    with pytest.raises(TypeError):
        Point(*args, **kwargs)


def test_frozen():
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2
    with pytest.raises(AttributeError):
        del p.x
    assert issubclass(FrozenInstanceError, AttributeError)


def test_equality_and_hash_over_compared_fields():
    assert Point(1, 2) == Point(1, 2, (), {"ignored": True})     # raw has compare=False
    assert Point(1, 2) != Point(1, 3)
    assert hash(Point(1, 2)) == hash(Point(1, 2, (), {"x": 1}))
    assert len({Point(1), Point(1), Point(2)}) == 2

    class Other(Record):
        x: int
        y: int = 0
    assert Point(1) != Other(1)                                   # class matters
    nan = float("nan")
    assert (Point(1, nan) == Point(1, nan)) == (DPoint(1, nan) == DPoint(1, nan)) == True  # noqa: E712 - same NaN object: identity first, as tuples compare
    assert (Point(1, nan) == Point(1, float("nan"))) == \
        (DPoint(1, nan) == DPoint(1, float("nan"))) == False  # noqa: E712


def test_fields_replace_asdict_match_dataclasses():
    assert [(f.name, f.default) for f in fields(Point)] == \
        [(f.name, f.default if f.default is not dataclasses.MISSING else MISSING)
         for f in dataclasses.fields(DPoint)]
    assert fields(Point(1)) is fields(Point)
    p = Point(1, 2, ("t",), {"k": "v"})
    assert replace(p, y=9) == Point(1, 9, ("t",))
    assert replace(p, y=9).raw == {"k": "v"}
    with pytest.raises(TypeError):
        replace(p, nope=1)

    class Outer(Record):
        inner: Point
        items: tuple = ()
        by_name: dict = field(default_factory=dict)

    @dataclasses.dataclass(frozen=True)
    class DOuter:
        inner: DPoint
        items: tuple = ()
        by_name: dict = dataclasses.field(default_factory=dict)

    o = Outer(Point(1), (Point(2), 3), {"a": Point(3), "b": [Point(4)]})
    d = DOuter(DPoint(1), (DPoint(2), 3), {"a": DPoint(3), "b": [DPoint(4)]})
    assert asdict(o) == dataclasses.asdict(d)
    assert is_record(o) and is_record(Outer) and not is_record(d)


def test_subclasses_add_fields_after_their_bases_and_may_redefine_defaults():
    class Base(Record):
        a: int
        b: int = 1

    class Sub(Base):
        c: int = 2
        b: int = 5

    assert [f.name for f in fields(Sub)] == ["a", "b", "c"]
    assert Sub(0) == Sub(0, 5, 2)


def test_mutable_records():
    class Ctx(Record, frozen=False):
        a: int = 0
        extra: dict = field(default_factory=dict)

    c = Ctx()
    c.a = 3
    c.extra["k"] = 1
    assert c.a == 3 and Ctx().extra == {}
    with pytest.raises(TypeError):
        hash(c)


def test_copy_and_pickle():
    p = Point(1, 2, ("a",), {"k": [1]})
    assert copy.deepcopy(p) == p and copy.deepcopy(p).raw == {"k": [1]}
    assert pickle.loads(pickle.dumps(p)) == p


class Color(Enum):
    RED = "red"
    DARK_BLUE = "dark-blue"


def test_enum_is_what_phase_needs_of_enum():
    assert list(Color) == [Color.RED, Color.DARK_BLUE] and len(Color) == 2
    assert Color("dark-blue") is Color.DARK_BLUE
    assert Color.RED.value == "red" and Color.RED.name == "RED"
    assert repr(Color.RED) == "<Color.RED: 'red'>" and str(Color.RED) == "Color.RED"
    assert isinstance(Color.RED, Color) and Color.RED != Color.DARK_BLUE
    assert {Color.RED: 1}[Color.RED] == 1
    assert copy.deepcopy(Color.RED) is Color.RED
    assert pickle.loads(pickle.dumps(Color.DARK_BLUE)) is Color.DARK_BLUE
    with pytest.raises(ValueError):
        Color("green")
    with pytest.raises(AttributeError):
        Color.RED.value = "x"
    with pytest.raises(AttributeError):
        Color.RED = "x"


def test_steps_and_config_are_records():
    from pyrunc.plan.steps import Exec, MountFs, Phase, Plan, RunHooks
    from pyrunc.spec.config import Config
    assert is_record(Exec(("true",), ())) and Exec.phase is Phase.START
    m = MountFs("/proc", "proc", "proc", 0, "", (), 0)
    assert m.cleared_flags == 0 and replace(m, copyup=True).copyup
    assert RunHooks("prestart", ()).phase is Phase.RUNTIME_HOOKS
    assert Plan((Exec(("a",), ()),)).phase(Phase.START) == [Exec(("a",), ())]
    assert [f.name for f in fields(Config)][:3] == ["oci_version", "bundle", "root"]
