"""Typed records: what @dataclass(frozen=True) gave us, at a fraction of its start-up cost.

Every `pyrunc create` defines ~70 record classes (config, plan steps, cgroup
and seccomp plans) in a fresh interpreter.  dataclasses writes and compiles
Python source for each class (__init__, __eq__, __repr__, __hash__, ...) and
imports inspect and re to do it: together ~25 ms per call.  A Record subclass
costs one __init_subclass__ call; the methods are shared by all of them.

    class Mount(Record):
        destination: str
        options: tuple = ()
        raw: dict = field(default_factory=dict, compare=False, repr=False)

gives what the code and tests use of a frozen dataclass: construction by
position or keyword with defaults (and default factories), immutability
(FrozenInstanceError, an AttributeError), equality and hash over the
compared fields, the same repr, and the functions fields(), replace() and
asdict().  `class Context(Record, frozen=False)` makes a mutable one
(no hash, as with a non-frozen dataclass).  Fields are the class's own
annotations after its bases' (a redefined field keeps its place), so
subclassing works as with dataclasses.  Construction is a little slower per
object than a generated __init__; plans make tens of objects, not thousands.

Enum is the same idea for enum.Enum (whose import, with functools and
collections, costs ~3 ms): see its docstring.
"""

__all__ = ["Record", "field", "fields", "replace", "asdict", "is_record", "MISSING",
           "FrozenInstanceError", "Enum"]


class _Missing:
    __slots__ = ()

    def __repr__(self):
        return "MISSING"


MISSING = _Missing()


class FrozenInstanceError(AttributeError):
    pass


class Field:
    """One field: .name, .default, .default_factory (MISSING when absent), .compare, .repr."""
    __slots__ = ("name", "default", "default_factory", "compare", "repr")

    def __init__(self, name=None, default=MISSING, default_factory=MISSING, compare=True,
                 repr=True):  # noqa: A002 - the dataclasses keyword
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = name
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.repr = repr

    def __repr__(self):
        return (f"Field(name={self.name!r}, default={self.default!r}, "
                f"default_factory={self.default_factory!r}, compare={self.compare}, "
                f"repr={self.repr})")


def field(*, default=MISSING, default_factory=MISSING, compare=True, repr=True):  # noqa: A002
    """A field's options, as dataclasses.field (only the options pyrunc uses)."""
    return Field(None, default, default_factory, compare, repr)


class Record:
    __slots__ = ()
    # per class, set by __init_subclass__
    _fields = ()          # Field objects, in order
    _names = ()           # their names
    _name_set = frozenset()
    _fill = ()            # (name, default, factory) of every field with a default
    _compared = ()        # names that take part in ==, hash
    _shown = ()           # names the repr shows

    def __init_subclass__(cls, frozen=True, **kw):
        # one pass, no generator per tuple: every create defines ~80 records
        if kw:
            super().__init_subclass__(**kw)
        own = cls.__dict__.get("__annotations__")
        if own:
            by_name = {f.name: f for f in cls._fields}
            namespace = cls.__dict__
            for name in own:
                value = namespace.get(name, MISSING)
                if isinstance(value, Field):
                    f = value
                    f.name = name
                    if f.default is MISSING:
                        delattr(cls, name)     # no class attribute standing in for it
                    else:
                        setattr(cls, name, f.default)
                else:
                    f = Field(name, value)
                by_name[name] = f
            cls._fields = tuple(by_name.values())
        names, fill, compared, shown = [], [], [], []
        for f in cls._fields:
            names.append(f.name)
            if f.default is not MISSING or f.default_factory is not MISSING:
                fill.append((f.name, f.default, f.default_factory))
            if f.compare:
                compared.append(f.name)
            if f.repr:
                shown.append(f.name)
        cls._names = tuple(names)
        cls._name_set = frozenset(names)
        cls._fill = tuple(fill)
        cls._compared = tuple(compared)
        cls._shown = tuple(shown)
        if not frozen:
            cls.__setattr__ = object.__setattr__
            cls.__delattr__ = object.__delattr__
            cls.__hash__ = None

    def __init__(self, *args, **kwargs):
        names = self._names
        d = self.__dict__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} positional "
                            f"arguments but {len(args)} were given")
        d.update(zip(names, args))
        if kwargs:
            for k in kwargs:
                if k not in self._name_set:
                    raise TypeError(f"{type(self).__name__}() got an unexpected keyword "
                                    f"argument {k!r}")
                if k in d:
                    raise TypeError(f"{type(self).__name__}() got multiple values for "
                                    f"argument {k!r}")
            d.update(kwargs)
        if len(d) < len(names):
            for name, default, factory in self._fill:
                if name not in d:
                    d[name] = default if factory is MISSING else factory()
            if len(d) < len(names):
                missing = [n for n in names if n not in d]
                raise TypeError(f"{type(self).__name__}() missing {len(missing)} required "
                                f"argument(s): {', '.join(map(repr, missing))}")

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        d, o = self.__dict__, other.__dict__
        # as tuple comparison does: identity first (a NaN field equals itself)
        return all(d[n] is o[n] or d[n] == o[n] for n in self._compared)

    def __hash__(self):
        d = self.__dict__
        return hash(tuple(d[n] for n in self._compared))

    def __repr__(self):
        d = self.__dict__
        return f"{type(self).__qualname__}({', '.join(f'{n}={d[n]!r}' for n in self._shown)})"


def is_record(obj):
    return isinstance(obj, Record) or (isinstance(obj, type) and issubclass(obj, Record))


def fields(obj):
    """The Field objects of a record or record class, in order."""
    if not is_record(obj):
        raise TypeError("fields() needs a record or a record class")
    return obj._fields


def replace(obj, **changes):
    """A copy of the record with some fields changed (dataclasses.replace)."""
    if not isinstance(obj, Record):
        raise TypeError("replace() needs a record instance")
    d = obj.__dict__
    for n in obj._names:
        if n not in changes:
            changes[n] = d[n]
    return obj.__class__(**changes)


def asdict(obj):
    """The record as a dict, records inside it (also in lists, tuples, dicts) too."""
    if not isinstance(obj, Record):
        raise TypeError("asdict() needs a record instance")
    return _asdict(obj)


def _asdict(v):
    if isinstance(v, Record):
        d = v.__dict__
        return {n: _asdict(d[n]) for n in v._names}
    if isinstance(v, tuple) and hasattr(v, "_fields"):      # namedtuple
        return type(v)(*[_asdict(x) for x in v])
    if isinstance(v, (list, tuple)):
        return type(v)(_asdict(x) for x in v)
    if isinstance(v, dict):
        return type(v)((_asdict(k), _asdict(x)) for k, x in v.items())
    return v


class _EnumType(type):
    def __new__(mcs, name, bases, ns):
        cls = super().__new__(mcs, name, bases, ns)
        members = []
        for key, value in ns.items():
            if key.isupper() and not key.startswith("_"):
                member = object.__new__(cls)
                object.__setattr__(member, "name", key)
                object.__setattr__(member, "value", value)
                type.__setattr__(cls, key, member)
                members.append(member)
        cls._members = tuple(members)
        return cls

    def __iter__(cls):
        return iter(cls._members)

    def __len__(cls):
        return len(cls._members)

    def __call__(cls, value):
        """Phase("start") -> Phase.START, as with enum."""
        for member in cls._members:
            if member.value == value:
                return member
        raise ValueError(f"{value!r} is not a valid {cls.__qualname__}")

    def __setattr__(cls, name, value):
        if name in cls.__dict__ and isinstance(cls.__dict__[name], cls):
            raise AttributeError(f"cannot reassign member {name!r}")
        super().__setattr__(name, value)


class Enum(metaclass=_EnumType):
    """What pyrunc uses of enum.Enum: every UPPERCASE class attribute becomes a
    member (a singleton with .name and .value); members compare by identity,
    iterate in definition order, and Cls(value) finds one.  repr/str as enum's.

        class Phase(Enum):
            CGROUPS = "cgroups"
    """
    __slots__ = ("name", "value")

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot assign to {name!r} of an enum member")

    def __repr__(self):
        return f"<{type(self).__qualname__}.{self.name}: {self.value!r}>"

    def __str__(self):
        return f"{type(self).__qualname__}.{self.name}"

    def __hash__(self):
        return hash(self.name)

    def __reduce__(self):
        return type(self), (self.value,)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self
