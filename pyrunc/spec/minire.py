"""Anchored character-class patterns, matched without the `re` module.

The schemas' "pattern" keywords are all of one simple kind (`^RLIMIT_[A-Z]+$`,
`^[cbup]$`, `^MB:[^\\n]*$`), and a runc-made config meets two of them on
every create.  `import re` costs ~3 ms (it brings enum, functools and
collections along); matching these by hand costs microseconds.

compile(pattern) understands `^` ... `$` around a sequence of literal
characters, `.`, escapes (\\n, \\t, \\r, \\f, \\v, \\\\ and escaped punctuation) and
classes `[...]` (ranges, a leading ^, the same escapes), each optionally
followed by `*`, `+` or `?`.  For anything else it returns None and the
caller uses `re`.  search(compiled, s) then answers exactly what
re.search(pattern, s) is not None would, `$` matching before a final "\\n"
included (tests/unit/test_minire.py compares the two).
"""

_SPECIAL = set(".^$*+?{}[]\\|()")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}


class _Unsupported(Exception):
    pass


def compile(pattern):  # noqa: A001 - re's name, on purpose
    """A tuple of (test, kind) atoms for an anchored pattern, or None if unsupported."""
    if len(pattern) < 2 or pattern[0] != "^" or pattern[-1] != "$" or pattern.endswith("\\$"):
        return None
    try:
        return tuple(_atoms(pattern[1:-1]))
    except _Unsupported:
        return None


def _escape(ch):
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isascii() and not ch.isalnum() and ch not in " _":
        return ch   # escaped punctuation is itself
    raise _Unsupported(ch)   # \d, \w, \b, octal, ... are re's business


def _atoms(body):
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == "[":
            test, i = _klass(body, i + 1)
        elif ch == "\\":
            if i + 1 >= n:
                raise _Unsupported(body)
            test, i = _literal(_escape(body[i + 1])), i + 2
        elif ch == ".":
            test, i = _not_newline, i + 1
        elif ch in _SPECIAL:
            raise _Unsupported(ch)
        else:
            test, i = _literal(ch), i + 1
        kind = "one"
        if i < n and body[i] in "*+?":
            kind = {"*": "star", "+": "plus", "?": "opt"}[body[i]]
            i += 1
            if i < n and body[i] in "*+?{":
                raise _Unsupported(body)   # lazy or possessive quantifiers, repeats
        if kind == "plus":
            yield test, "one"
            kind = "star"
        yield test, kind


def _literal(c):
    return c.__eq__


def _not_newline(c):
    return c != "\n"


def _klass(body, i):
    """[...] starting after the "[": (test, index after "]")."""
    n = len(body)
    negate = i < n and body[i] == "^"
    if negate:
        i += 1
    chars, ranges, first = set(), [], True
    while True:
        if i >= n:
            raise _Unsupported(body)
        ch = body[i]
        if ch == "]" and not first:
            i += 1
            break
        first = False
        if ch == "[" or body[i:i + 2] in ("--", "&&", "~~", "||"):
            # nested sets and set operations: re warns that their meaning will change
            raise _Unsupported(body)
        if ch == "\\":
            if i + 1 >= n:
                raise _Unsupported(body)
            ch, i = _escape(body[i + 1]), i + 2
        else:
            i += 1
        if i + 1 < n and body[i] == "-" and body[i + 1] != "]":
            hi = body[i + 1]
            i += 2
            if hi == "\\":
                if i >= n:
                    raise _Unsupported(body)
                hi, i = _escape(body[i]), i + 1
            elif hi == "[":
                raise _Unsupported(body)
            if hi < ch:
                raise _Unsupported(body)   # re: "bad character range"
            ranges.append((ch, hi))
        else:
            chars.add(ch)
    chars, ranges = frozenset(chars), tuple(ranges)

    def test(c):
        hit = c in chars or any(lo <= c <= hi for lo, hi in ranges)
        return hit != negate
    return test, i


def _fullmatch(atoms, s):
    """Thompson simulation: the set of atom positions alive after each character."""
    m = len(atoms)

    def close(states):
        out, todo = set(), list(states)
        while todo:
            k = todo.pop()
            if k in out:
                continue
            out.add(k)
            if k < m and atoms[k][1] in ("star", "opt"):
                todo.append(k + 1)
        return out

    states = close({0})
    for c in s:
        nxt = set()
        for k in states:
            if k < m and atoms[k][0](c):
                nxt.add(k if atoms[k][1] == "star" else k + 1)
        if not nxt:
            return False
        states = close(nxt)
    return m in states


def search(atoms, s):
    """re.search(pattern, s) is not None, for compile(pattern) == atoms."""
    # `$` matches at the very end, or right before a final newline
    return _fullmatch(atoms, s) or (s.endswith("\n") and _fullmatch(atoms, s[:-1]))
