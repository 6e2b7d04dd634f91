"""Check a JSON document against one of pyrunc's own schemas in <repo>/specs.

    validate(doc, "config")            # a bundle's config.json
    validate(doc, "process")           # the file given to `exec --process`
    validate(doc, "linux-resources")   # the JSON given to `update --resources`

The first problem (in document order) is raised as ConfigError(json_path,
message), with the path in dotted form: ``process.args``,
``mounts[2].destination``, ``linux.sysctl["net.ipv4.ip_forward"]``.

validate() runs pyrunc.spec.fastvalidate, which reads the same schema files:
jsonschema costs ~35 ms to import, more than runc's whole `run`.
validate_with_jsonschema() gives the same answer through jsonschema; the tests
use it to prove the two agree.
"""
import posix

from pyrunc import fastjson
from pyrunc import pathstr
from pyrunc.errors import ConfigError

SCHEMA_NAMES = ("config", "process", "linux-resources")
_SUFFIX = ".schema.json"
# what may follow a "." in a path: an ASCII identifier (no `re` import for that)
_IDENT_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_validators = {}
_fast = None   # the loaded fastvalidate.SchemaSet


def specs_dir():
    """Directory holding the *.schema.json files.

    In a source checkout that is <repo>/specs, beside the package.  An installed
    wheel carries the same files as package data in pyrunc/_specs (pyproject maps
    that package name onto the top-level specs/ folder).
    """
    pkg = pathstr.dirname(pathstr.dirname(pathstr.abspath(__file__)))
    for candidate in (pathstr.join(pkg, "_specs"), pathstr.join(pathstr.dirname(pkg), "specs")):
        if pathstr.isfile(pathstr.join(candidate, "config" + _SUFFIX)):
            return candidate
    raise ConfigError("", f"schema directory not found next to {pkg}: no such file or directory")


def json_path(segments):
    """['mounts', 2, 'destination'] -> 'mounts[2].destination'."""
    out = []
    for seg in segments:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif seg and seg[0] in _IDENT_START and _IDENT_CHARS.issuperset(seg):
            out.append(("." if out else "") + seg)
        else:
            out.append(f"[{fastjson.dumps(seg)}]")
    return "".join(out)


def validate(doc, schema_name):
    """Raise ConfigError for the first schema violation in `doc`; return None if valid."""
    _raise_first(doc, fast_errors(doc, schema_name))


def validate_with_jsonschema(doc, schema_name):
    """validate(), answered by jsonschema instead (slow to import; for tests)."""
    _raise_first(doc, jsonschema_errors(doc, schema_name))


def fast_errors(doc, schema_name):
    """Every violation as (segments, keyword, detail, instance), validator order."""
    global _fast
    if schema_name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {schema_name!r}")
    if _fast is None:
        from pyrunc.spec.fastvalidate import SchemaSet
        # lazy: a document compiles only the parts of specs/ it reaches (~0.3 ms
        # saved on create); tests/unit load them all eagerly, so a keyword the
        # validator lacks still fails there
        _fast = SchemaSet.load(specs_dir(), lazy=True)
    return _fast.errors(doc, schema_name)


def jsonschema_errors(doc, schema_name):
    """fast_errors(), computed by jsonschema (for unknown keywords, `detail`
    is jsonschema's own message and `keyword` is prefixed with "jsonschema:")."""
    return [_neutral(e) for e in _validator(schema_name).iter_errors(doc)]


def first_error(doc, errors):
    """The error a user is shown: earliest in the file; ties keep validator order."""
    ranked = sorted(range(len(errors)), key=lambda i: (_doc_order(doc, errors[i][0]), i))
    return errors[ranked[0]]


def _raise_first(doc, errors):
    if errors:
        raise ConfigError(*describe(first_error(doc, errors)))


def _validator(schema_name):
    if schema_name in _validators:
        return _validators[schema_name]
    if schema_name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {schema_name!r}")
    from jsonschema import Draft7Validator, validators
    from referencing import Registry
    from referencing.jsonschema import DRAFT7

    directory = specs_dir()
    resources, schemas = [], {}
    for name in sorted(posix.listdir(directory)):
        if name.endswith(_SUFFIX):
            with open(pathstr.join(directory, name), encoding="utf-8") as f:
                schema = fastjson.loads(f.read())
            # Without "$schema", a $ref into another file keeps our validator
            # class (and its integer rule) instead of switching to the
            # stock class registered for the draft-07 URI.
            schema.pop("$schema", None)
            schemas[name[: -len(_SUFFIX)]] = schema
            resources.append((schema["$id"], DRAFT7.create_resource(schema)))
    registry = Registry().with_resources(resources)

    # Go's decoder refuses 1.0 where an integer is expected; draft 7 would
    # accept it, so narrow "integer" to real ints (bool is an int in Python).
    def is_int(_checker, instance):
        return isinstance(instance, int) and not isinstance(instance, bool)

    checker = Draft7Validator.TYPE_CHECKER.redefine("integer", is_int)
    cls = validators.extend(Draft7Validator, type_checker=checker)
    for name, schema in schemas.items():
        if name in SCHEMA_NAMES:
            _validators[name] = cls(schema, registry=registry)
    return _validators[schema_name]


def _doc_order(doc, path):
    """Sort key placing an error where its value sits in the document."""
    key, node = [], doc
    for seg in path:
        if isinstance(node, dict):
            key.append(list(node).index(seg) if seg in node else len(node))
        else:
            key.append(seg if isinstance(seg, int) else 0)
        try:
            node = node[seg]
        except (KeyError, IndexError, TypeError):
            break
    return key


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
               (list, "array"), (dict, "object"), (type(None), "null"))


def _json_type(value):
    for py, name in _JSON_TYPES:
        if isinstance(value, py):
            return name
    return type(value).__name__


def _short(value, limit=60):
    import json   # an error message is being made: the cost no longer matters
    text = json.dumps(value, sort_keys=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_DESCRIBED = ("type", "enum", "minimum", "maximum", "pattern", "minItems")


def _neutral(error):
    """A jsonschema ValidationError in fastvalidate's (segments, keyword, detail, instance)."""
    path = list(error.absolute_path)
    kind, expected, inst = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = next((p for p in expected if isinstance(inst, dict) and p not in inst
                        and error.message.startswith(repr(p))), None)
        if missing is None:
            missing = next(p for p in expected if p not in inst)
        return path, kind, missing, inst
    if kind in _DESCRIBED:
        return path, kind, expected, inst
    return path, f"jsonschema:{kind}", error.message, inst


def describe(error):
    """(json_path, one-line message) for one (segments, keyword, detail, instance)."""
    path, kind, expected, inst = error
    if kind == "required":
        return json_path(list(path) + [expected]), "required property missing"
    if kind == "type":
        want = expected if isinstance(expected, str) else " or ".join(expected)
        return json_path(path), f"expected {want}, got {_json_type(inst)}"
    if kind == "enum":
        return json_path(path), f"{inst!r} is not one of {expected!r}"
    if kind == "minimum":
        return json_path(path), f"{inst} is less than the minimum of {expected}"
    if kind == "maximum":
        return json_path(path), f"{inst} is greater than the maximum of {expected}"
    if kind == "pattern":
        return json_path(path), f"{_short(inst)} does not match {expected!r}"
    if kind == "minItems":
        return json_path(path), f"must have at least {expected} item(s)"
    return json_path(path), " ".join(str(expected).split())[:200]
