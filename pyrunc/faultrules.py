"""Fault rules: their syntax, and where they come from (see pyrunc.faults).

A rule is one line, `ACTION key=value ...` with shell quoting; `;` separates
rules on one line and `#` starts a comment.  A bad rule is a usage error that
names its source (file and line, env, or annotation key).
"""
from dataclasses import dataclass

from pyrunc.errors import UsageError

ANNOTATION_PREFIX = "org.pyrunc.fault."
ACTIONS = ("fail", "delay", "hang", "crash", "die", "badpid", "badlog")
_COMMON = {"cmd", "id", "annotation", "nth"}
_KEYS = {"fail": {"step", "code", "msg"}, "delay": {"step", "secs"}, "hang": {"step"},
         "crash": {"step"}, "die": {"step", "code"}, "badpid": {"content"},
         "badlog": {"content"}}


@dataclass(frozen=True)
class Rule:
    action: str
    text: str                     # the rule as written (trace, default messages, counters)
    source: str                   # "file:/x:3", "env:1", "annotation:org.pyrunc.fault.a"
    cmd: tuple = ()               # empty: every command
    id: str | None = None         # fnmatch pattern
    annotation: tuple | None = None   # (key, value or None)
    step: tuple = ()              # plan step type names; empty: at command start
    nth: int = 0                  # 0: every matching call
    nth_on: bool = False          # "N+": the Nth and every later one
    code: int | None = None
    msg: str | None = None
    secs: float = 0.0
    content: str | None = None

    def describe(self):
        return {"action": self.action, "rule": self.text, "source": self.source}


# --- parsing ------------------------------------------------------------------

def parse_rules(text, source):
    """Rules from a file's or variable's text; UsageError names the bad one."""
    import shlex
    rules = []
    for lineno, line in enumerate(text.splitlines(), 1):
        lex = shlex.shlex(line, posix=True, punctuation_chars=";")
        lex.whitespace_split = True
        lex.commenters = "#"
        try:
            tokens = list(lex)
        except ValueError as e:
            raise UsageError(f"fault rule {source}:{lineno}: {e}: {line.strip()}") from None
        chunk = []
        for tok in tokens + [";"]:
            if tok.strip(";") == "" and tok:
                if chunk:
                    rules.append(parse_rule(chunk, f"{source}:{lineno}"))
                chunk = []
            else:
                chunk.append(tok)
    return rules


def parse_rule(tokens, source):
    text = " ".join(tokens)

    def bad(why):
        return UsageError(f"fault rule {source}: {why}: {text}")
    action, fields = tokens[0], {}
    if action not in ACTIONS:
        raise bad(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    for tok in tokens[1:]:
        key, eq, value = tok.partition("=")
        if not eq:
            raise bad(f"{tok!r} is not key=value")
        if key not in _COMMON | _KEYS[action]:
            raise bad(f"{action} takes no {key!r}")
        fields[key] = value
    kw = {}
    if "cmd" in fields:
        kw["cmd"] = tuple(c for c in fields["cmd"].split(",") if c)
    if "id" in fields:
        kw["id"] = fields["id"]
    if "annotation" in fields:
        k, eq, v = fields["annotation"].partition("=")
        kw["annotation"] = (k, v if eq else None)
    if "step" in fields:
        kw["step"] = tuple(s for s in fields["step"].split(",") if s)
        unknown = [s for s in kw["step"] if not _is_step(s)]
        if unknown:
            raise bad(f"no plan step is called {unknown[0]!r}")
    if "nth" in fields:
        n = fields["nth"]
        kw["nth_on"] = n.endswith("+")
        try:
            kw["nth"] = int(n.rstrip("+"))
        except ValueError:
            raise bad("nth wants N or N+") from None
        if kw["nth"] < 1:
            raise bad("nth counts from 1")
    if "code" in fields:
        try:
            kw["code"] = int(fields["code"])
        except ValueError:
            raise bad("code wants a number") from None
        if not 0 <= kw["code"] <= 255:
            raise bad("code must be 0..255")
    if "secs" in fields:
        try:
            kw["secs"] = float(fields["secs"])
        except ValueError:
            raise bad("secs wants a number") from None
        if kw["secs"] < 0:
            raise bad("secs must be >= 0")
    elif action == "delay":
        raise bad("delay needs secs=")
    for key in ("msg", "content"):
        if key in fields:
            # content may spell a newline as \n (a pid file "123\n" is a classic)
            kw[key] = fields[key].encode("latin-1", "backslashreplace").decode(
                "unicode_escape") if key == "content" else fields[key]
    return Rule(action, text, source, **kw)


def _is_step(name):
    from pyrunc.plan import steps
    cls = getattr(steps, name, None)
    return isinstance(cls, type) and getattr(cls, "phase", None) is not None \
        and name not in ("Phase", "Plan")


def annotation_rules(annotations):
    """Rules from `org.pyrunc.fault.*` annotations, in key order."""
    rules = []
    for key in sorted(k for k in annotations if k.startswith(ANNOTATION_PREFIX)):
        rules += parse_rules(str(annotations[key]), f"annotation:{key}")
    return rules


def load_rules(faults_flag, env, annotations=None):
    """Every rule the caller enabled: --faults FILE, PYRUNC_FAULTS, annotations."""
    rules = []
    if faults_flag:
        rules += _rules_file(faults_flag)
    value = env.get("PYRUNC_FAULTS")
    if value:
        rules += _rules_file(value) if value.startswith("/") else parse_rules(value, "env")
    if annotations:
        rules += annotation_rules(annotations)
    return rules


def _rules_file(path):
    try:
        with open(path) as f:
            return parse_rules(f.read(), f"file:{path}")
    except OSError as e:
        from pyrunc.errors import oserror_text
        raise UsageError(f"faults file {path}: {oserror_text(e)}") from None
