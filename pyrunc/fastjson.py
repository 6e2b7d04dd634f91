"""json.loads/json.dumps without importing the json package.

`import json` costs a short-lived command ~5 ms: json.decoder and
json.encoder import `re` (and through it enum, functools, collections) for
regular expressions the C accelerator makes unnecessary.  The work itself is
done by `_json` (the C module behind json) in both cases; this module calls
it directly, configured exactly as json's defaults configure it, so the text
is the same (tests/unit/test_fastjson.py holds it to that).

Only the default behaviour is offered.  On any failure the same input goes
to the real json module, so errors (JSONDecodeError with its position,
TypeError for an object json cannot encode) are json's own.
"""
import _json

_WS = " \t\n\r"   # what json's decoder skips around a document


class _DecoderDefaults:
    """What _json.make_scanner reads from a json.JSONDecoder() with no arguments."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"),
                      "-Infinity": float("-inf")}.__getitem__


_scan = _json.make_scanner(_DecoderDefaults())


def _not_serializable(o):
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


_str = _json.encode_basestring_ascii


def loads(s):
    """json.loads(s): a str, or bytes json would read as UTF-8."""
    try:
        if isinstance(s, (bytes, bytearray)):
            # json.loads tells UTF-16/32 by NUL bytes among the first four, and
            # strips a UTF-8 BOM; anything like that is left to it
            if b"\0" in s[:4] or s[:3] == b"\xef\xbb\xbf":
                raise ValueError("not plain UTF-8")
            s = s.decode("utf-8", "surrogatepass")
        start = len(s) - len(s.lstrip(_WS))
        obj, end = _scan(s, start)
        if s[end:].strip(_WS):
            raise ValueError("extra data")
        return obj
    except (ValueError, StopIteration, TypeError, AttributeError, RecursionError, SystemError):
        # (UnicodeDecodeError is a ValueError.)  SystemError: on a syntax error
        # the C scanner looks JSONDecodeError up in sys.modules["json.decoder"]
        # and, json not being imported, fails without setting an exception.
        pass
    import json
    return json.loads(s)   # raises json's own error for this input


def dumps(obj, indent=None):
    """json.dumps(obj) or, with an int indent, json.dumps(obj, indent=indent)."""
    try:
        if indent is not None:
            out = []
            _dump_indented(obj, " " * indent, "\n", out)
            return "".join(out)
        if isinstance(obj, str):
            return _str(obj)
        # json.dumps's defaults: circular check, ensure_ascii, ": " and ", ", no sorting,
        # no skipped keys, NaN allowed.  A fresh encoder per call: the markers are state.
        return "".join(_json.make_encoder({}, _not_serializable, _str, None, ": ", ", ",
                                          False, False, True)(obj, 0))
    except (ValueError, TypeError, RecursionError):
        pass
    import json
    return json.dumps(obj, indent=indent)


def _float(f):
    if f != f:
        return "NaN"
    if f == float("inf"):
        return "Infinity"
    if f == float("-inf"):
        return "-Infinity"
    return float.__repr__(f)


def _scalar(v):
    """The JSON text of a non-container value (json's order of type checks), else None."""
    if isinstance(v, str):
        return _str(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return int.__repr__(v)
    if isinstance(v, float):
        return _float(v)
    return None


def _key(k):
    if isinstance(k, str):
        return k
    if isinstance(k, float):
        return _float(k)
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {k.__class__.__name__}")


def _dump_indented(v, step, nl, out):
    """json's indented layout: items on their own lines, "," between, ": " after keys."""
    text = _scalar(v)
    if text is not None:
        out.append(text)
    elif isinstance(v, (list, tuple)):
        if not v:
            out.append("[]")
            return
        inner = nl + step
        out.append("[")
        for i, item in enumerate(v):
            out.append("," + inner if i else inner)
            _dump_indented(item, step, inner, out)
        out.append(nl + "]")
    elif isinstance(v, dict):
        if not v:
            out.append("{}")
            return
        inner = nl + step
        out.append("{")
        for i, (k, item) in enumerate(v.items()):
            out.append(("," + inner if i else inner) + _str(_key(k)) + ": ")
            _dump_indented(item, step, inner, out)
        out.append(nl + "}")
    else:
        _not_serializable(v)
