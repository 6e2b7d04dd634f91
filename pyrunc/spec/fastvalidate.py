"""A small JSON-Schema (draft-07) validator for exactly the keywords specs/ uses.

jsonschema costs ~35 ms to import, more than runc's whole `run`; this module
costs well under a millisecond and reads the same specs/*.schema.json files,
so specs/ stays the single source of truth.  tests/unit/test_spec_fastvalidate.py
proves it reports the same errors as jsonschema over the real client configs
and a large mutation corpus.

    schemas = SchemaSet.load(directory)             # everything compiled and checked now
    schemas = SchemaSet.load(directory, lazy=True)  # compiled as documents reach it
    schemas.errors(doc, "config")   -> [(segments, keyword, detail, instance), ...]
    schemas.is_valid(doc, "config") -> bool

`errors` lists every violation (pyrunc.spec.validate picks the first in
document order and words it).  `detail` is the keyword's value from the
schema, except for "required", where it is the one missing member.

Every keyword in the files must be one this module implements (or a pure
annotation); anything else raises UnsupportedSchema, so a schema edit can
never be silently ignored: an eager SchemaSet raises it at load (the tests
load specs/ so); a lazy one (pyrunc.spec.validate's: a create reaches about
half of specs/, compiling all of it cost ~0.3 ms) compiles a root, a member
of "properties" or a "$ref" target when a document first reaches it, and
raises it then.  Semantics follow jsonschema's Draft7Validator, with the
project's one deliberate change: "integer" does not match a float such as
1.0 (Go's decoder refuses those).
"""
import posix
import sys

from pyrunc import fastjson
from pyrunc import pathstr

SUFFIX = ".schema.json"
_DRAFT7 = "http://json-schema.org/draft-07/schema#"

# Keywords with no effect on validation ("definitions" is walked for checks).
_ANNOTATIONS = frozenset(("$schema", "$comment", "title", "description", "default",
                          "examples", "definitions"))

# type name -> (python classes, whether bool counts); bool is an int in Python
_TYPES = {
    "object": ((dict,), False), "array": ((list,), False), "string": ((str,), False),
    "integer": ((int,), False), "number": ((int, float), False),
    "boolean": ((bool,), True), "null": ((type(None),), False),
}


class UnsupportedSchema(Exception):
    """A schema file uses something this validator does not implement."""


# -- checks: each is fn(arg, instance, path, out); `path` is a linked
# -- (parent, key) tuple, None at the root, turned into a list only on error

def _run(ops, inst, path, out):
    for fn, arg in ops:
        fn(arg, inst, path, out)


def _type(arg, inst, path, out):
    classes, bool_ok, names = arg
    if isinstance(inst, bool):
        if bool_ok:
            return
    elif isinstance(inst, classes):
        return
    out.append((path, "type", names, inst))


def _required(names, inst, path, out):
    if isinstance(inst, dict):
        for name in names:
            if name not in inst:
                out.append((path, "required", name, inst))


def _properties(props, inst, path, out):
    # walks the document's members rather than the schema's: errors of
    # different members are ranked by document position anyway
    if isinstance(inst, dict):
        for key, value in inst.items():
            ops = props.get(key)
            if ops is not None:
                _run(ops, value, (path, key), out)


def _lazy_properties(arg, inst, path, out):
    # _properties, each member's schema compiled the first time a document has it
    schemas, compiled, subs, file, at = arg
    if isinstance(inst, dict):
        for key, value in inst.items():
            ops = compiled.get(key)
            if ops is None:
                if key not in subs:
                    continue
                ops = compiled[key] = schemas._compile(subs[key], file, f"{at}/{key}")
            _run(ops, value, (path, key), out)


def _additional(arg, inst, path, out):
    known, ops = arg
    if isinstance(inst, dict):
        for key, value in inst.items():
            if key not in known:
                _run(ops, value, (path, key), out)


def _items(ops, inst, path, out):
    if isinstance(inst, list):
        for index, value in enumerate(inst):
            _run(ops, value, (path, index), out)


def _all_of(branches, inst, path, out):
    for ops in branches:
        _run(ops, inst, path, out)


def _enum(arg, inst, path, out):
    allowed, values = arg
    if not (isinstance(inst, str) and inst in allowed):
        out.append((path, "enum", values, inst))


def _is_number(inst):
    return isinstance(inst, (int, float)) and not isinstance(inst, bool)


def _minimum(limit, inst, path, out):
    if _is_number(inst) and inst < limit:
        out.append((path, "minimum", limit, inst))


def _maximum(limit, inst, path, out):
    if _is_number(inst) and inst > limit:
        out.append((path, "maximum", limit, inst))


def _min_items(limit, inst, path, out):
    if isinstance(inst, list) and len(inst) < limit:
        out.append((path, "minItems", limit, inst))


_compiled_patterns = {}


def _pattern(pattern, inst, path, out):
    if not isinstance(inst, str):
        return
    found = _compiled_patterns.get(pattern)
    if found is None:
        found = _compiled_patterns[pattern] = _searcher(pattern)
    if not found(inst):   # search, not match: as jsonschema does
        out.append((path, "pattern", pattern, inst))


def _searcher(pattern):
    """inst -> whether re.search(pattern, inst) finds something."""
    from pyrunc.spec import minire
    atoms = minire.compile(pattern)
    if atoms is not None:   # the schemas' simple patterns: no `re` import (~3 ms)
        return lambda inst: minire.search(atoms, inst)
    import re
    regex = re.compile(pattern)
    return lambda inst: regex.search(inst) is not None


def segments(path):
    """Linked (parent, key) path -> ['mounts', 2, 'destination']."""
    out = []
    while path is not None:
        path, key = path
        out.append(key)
    out.reverse()
    return out


# -- loading and compiling -------------------------------------------------------

class SchemaSet:
    """Every *.schema.json of one directory, compiled to lists of checks."""

    def __init__(self, documents, lazy=False):
        """`documents`: {file name: parsed schema}.  Each needs an "$id" ending
        in its file name; $refs resolve between them by that name.  `lazy`:
        compile each part on first use (see the module's docstring)."""
        self.lazy = lazy
        self._docs = documents
        self._by_id = {}
        for name, schema in documents.items():
            sid = schema.get("$id") if isinstance(schema, dict) else None
            if not isinstance(sid, str) or not sid.endswith("/" + name):
                raise UnsupportedSchema(f"{name}: \"$id\" must end in /{name}")
            self._by_id[sid] = name
            if schema.get("$schema", _DRAFT7) not in (_DRAFT7, _DRAFT7.rstrip("#")):
                raise UnsupportedSchema(f"{name}: only draft-07 is implemented")
        self._memo = {}          # id(schema node) -> its check list
        self._in_flight = set()  # $ref nodes being resolved (catches $ref loops)
        self._roots = {}
        self._broken = None      # the UnsupportedSchema a lazy compile raised
        if not lazy:
            for name in sorted(documents):
                # compile everything, referenced or not, so that a bad keyword
                # anywhere is reported now and not when some document reaches it
                self._root(name[: -len(SUFFIX)])

    @classmethod
    def load(cls, directory, lazy=False):
        docs = {}
        image = next((f for f in sys.meta_path if type(f).__name__ == "ImageFinder"), None)
        for name in posix.listdir(directory):
            if name.endswith(SUFFIX):
                path = pathstr.join(directory, name)
                # parsed in the launcher's module image, while the file is unchanged
                doc = image.data(path) if image is not None else None
                if doc is None:
                    with open(path, "rb") as f:
                        doc = fastjson.loads(f.read())
                docs[name] = doc
        return cls(docs, lazy)

    def errors(self, doc, schema_name):
        """Every violation: [(segments, keyword, detail, instance)].

        The same set jsonschema reports; errors at one path come in its order
        (the caller ranks the rest by position in the document)."""
        return [(segments(path), kw, detail, inst)
                for path, kw, detail, inst in self._check(doc, schema_name)]

    def is_valid(self, doc, schema_name):
        return not self._check(doc, schema_name)

    def _check(self, doc, schema_name):
        if self._broken is not None:
            # a failed compile may have left half-built check lists behind
            raise self._broken
        out = []
        ops = self._roots.get(schema_name)
        try:
            _run(self._root(schema_name) if ops is None else ops, doc, None, out)
        except UnsupportedSchema as e:
            self._broken = e
            raise
        return out

    def _root(self, schema_name):
        name = schema_name + SUFFIX
        ops = self._roots[schema_name] = self._compile(self._docs[name], name, name)
        return ops

    # compiling: `where` is a readable location used only in error messages

    def _compile(self, schema, file, where):
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"{where}: a schema must be an object, not {schema!r}")
        if "$ref" in schema:
            return self._compile_ref(schema, file, where)
        key = id(schema)
        if key in self._memo:
            return self._memo[key]
        ops = self._memo[key] = []   # registered first: lets recursive schemas terminate
        for keyword, value in schema.items():
            at = f"{where}/{keyword}"
            if keyword == "$id" and schema is not self._docs[file]:
                raise UnsupportedSchema(f"{at}: \"$id\" is only supported at a file's root")
            if keyword == "definitions":
                # compiled to check them; lazily, only a "$ref" to one does
                if not self.lazy:
                    for name, sub in _expect(value, dict, at).items():
                        self._compile(sub, file, f"{at}/{name}")
            elif keyword not in _ANNOTATIONS and keyword != "$id":
                build = _BUILDERS.get(keyword)
                if build is None:
                    raise UnsupportedSchema(f"{at}: keyword {keyword!r} is not supported "
                                            f"by pyrunc.spec.fastvalidate")
                ops.append(build(self, value, schema, file, at))
        return ops

    def _compile_ref(self, schema, file, where):
        # draft-07 ignores every sibling of "$ref"; refuse real ones rather
        # than let somebody believe they are checked
        ignored = set(schema) - _ANNOTATIONS - {"$ref"}
        if ignored:
            raise UnsupportedSchema(f"{where}: {sorted(ignored)} beside \"$ref\" would be "
                                    f"ignored (draft-07)")
        if not self.lazy:
            for name, sub in _expect(schema.get("definitions", {}), dict, where).items():
                self._compile(sub, file, f"{where}/definitions/{name}")
        key = id(schema)
        if key in self._memo:
            return self._memo[key]
        if key in self._in_flight:
            raise UnsupportedSchema(f"{where}: \"$ref\" loop")
        self._in_flight.add(key)
        target, target_file, target_where = self._resolve(schema["$ref"], file, where)
        ops = self._memo[key] = self._compile(target, target_file, target_where)
        self._in_flight.discard(key)
        return ops

    def _resolve(self, ref, file, where):
        """'defs.schema.json#/definitions/x', '#/definitions/x', 'process.schema.json'."""
        if not isinstance(ref, str):
            raise UnsupportedSchema(f"{where}: \"$ref\" must be a string")
        doc_part, _, pointer = ref.partition("#")
        if doc_part:
            if doc_part in self._by_id:
                file = self._by_id[doc_part]
            elif doc_part in self._docs:
                file = doc_part    # relative to the base: every file shares one directory
            else:
                raise UnsupportedSchema(f"{where}: $ref {ref!r}: no schema file of that name")
        if pointer and (not pointer.startswith("/") or "%" in pointer):
            raise UnsupportedSchema(f"{where}: $ref {ref!r}: only JSON-pointer fragments "
                                    f"without %-escapes are supported")
        node = self._docs[file]
        for token in pointer.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            elif isinstance(node, dict) and token in node:
                node = node[token]
            else:
                raise UnsupportedSchema(f"{where}: $ref {ref!r} points at nothing")
        return node, file, f"{file}#{pointer}"


def _expect(value, kind, where):
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise UnsupportedSchema(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def _build_type(_set, value, _schema, _file, at):
    names = [value] if isinstance(value, str) else _expect(value, list, at)
    if not names or any(n not in _TYPES for n in names):
        raise UnsupportedSchema(f"{at}: unknown type {value!r}")
    classes = tuple(c for n in names for c in _TYPES[n][0] if c is not bool)
    return _type, (classes, any(_TYPES[n][1] for n in names), value)


def _build_required(_set, value, _schema, _file, at):
    if not all(isinstance(n, str) for n in _expect(value, list, at)):
        raise UnsupportedSchema(f"{at}: member names must be strings")
    return _required, tuple(value)


def _build_properties(schemas, value, _schema, file, at):
    if schemas.lazy:
        return _lazy_properties, (schemas, {}, _expect(value, dict, at), file, at)
    props = {name: schemas._compile(sub, file, f"{at}/{name}")
             for name, sub in _expect(value, dict, at).items()}
    return _properties, props


def _build_additional(schemas, value, schema, file, at):
    if not isinstance(value, dict):
        # the boolean form would need jsonschema's message; not used so far
        raise UnsupportedSchema(f"{at}: only a schema is supported here, not {value!r}")
    if "patternProperties" in schema:
        raise UnsupportedSchema(f"{at}: not supported together with patternProperties")
    known = frozenset(schema.get("properties", ()))
    return _additional, (known, schemas._compile(value, file, at))


def _build_items(schemas, value, _schema, file, at):
    if not isinstance(value, dict):
        raise UnsupportedSchema(f"{at}: only a single schema is supported, not {value!r}")
    return _items, schemas._compile(value, file, at)


def _build_all_of(schemas, value, _schema, file, at):
    if not _expect(value, list, at):
        raise UnsupportedSchema(f"{at}: must not be empty")
    return _all_of, tuple(schemas._compile(sub, file, f"{at}/{i}") for i, sub in enumerate(value))


def _build_enum(_set, value, _schema, _file, at):
    # string values only: membership is then plain equality, exactly as
    # jsonschema compares (it keeps 1 and True apart, which sets would not)
    if not _expect(value, list, at) or not all(isinstance(v, str) for v in value):
        raise UnsupportedSchema(f"{at}: only non-empty lists of strings are supported")
    return _enum, (frozenset(value), value)


def _build_number(check):
    def build(_set, value, _schema, _file, at):
        if not _is_number(value):
            raise UnsupportedSchema(f"{at}: expected a number, got {value!r}")
        return check, value
    return build


def _build_min_items(_set, value, _schema, _file, at):
    if _expect(value, int, at) < 0:
        raise UnsupportedSchema(f"{at}: must not be negative")
    return _min_items, value


def _build_pattern(_set, value, _schema, _file, at):
    return _pattern, _expect(value, str, at)


_BUILDERS = {
    "type": _build_type, "required": _build_required, "properties": _build_properties,
    "additionalProperties": _build_additional, "items": _build_items, "allOf": _build_all_of,
    "enum": _build_enum, "minimum": _build_number(_minimum),
    "maximum": _build_number(_maximum), "minItems": _build_min_items,
    "pattern": _build_pattern,
}
