"""linux.resources.devices -> the device cgroup's final state.

Both cgroup versions end up with the same thing: a default (allow or deny
every device) plus exceptions, each a rule string as v1's devices.allow
takes it ("c 1:3 rwm", "c 136:* rwm").  v1 writes that state into
devices.deny/devices.allow; v2 compiles it into an eBPF program.

The rules are applied in order the way the v1 kernel does it, starting from
"deny everything".  A deny-all rule returns to that start, which includes
the devices every container needs (/dev/null, /dev/zero, ..., the ptys;
runc adds the same list).  runc appends that list after the config's rules,
so a config cannot deny them; here they come first, so an explicit deny of,
say, /dev/null after the leading deny-all is honoured.  Removing part of a
wildcard exception is refused: v1 would silently ignore it (mknod, "m",
which every container has for every device, excepted).
"""
from pyrunc.errors import ConfigError

WILDCARD = -1
FIELD = "linux.resources.devices"

# what a container gets besides its config's rules (the same devices runc 1.1 allows)
DEFAULT_ALLOWED = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
                   "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm")

_ACCESS_ORDER = "rwm"


def _access(text, field):
    if any(ch not in _ACCESS_ORDER for ch in text):
        raise ConfigError(field, f"invalid access {text!r}: only r, w and m are allowed")
    return frozenset(text)


def access_string(acc):
    return "".join(ch for ch in _ACCESS_ORDER if ch in acc)


def _num(n):
    return "*" if n == WILDCARD else str(n)


def rule_string(dtype, major, minor, acc):
    return f"{dtype} {_num(major)}:{_num(minor)} {access_string(acc)}"


def parse_rule(text):
    """"c 1:3 rwm" -> ("c", 1, 3, frozenset("rwm")); "a" -> ("a", -1, -1, rwm)."""
    parts = text.split()
    if parts[0] == "a":
        return "a", WILDCARD, WILDCARD, frozenset(_ACCESS_ORDER)
    major, minor = parts[1].split(":")
    n = lambda s: WILDCARD if s == "*" else int(s)  # noqa: E731
    return parts[0], n(major), n(minor), frozenset(parts[2])


class DeviceState:
    """default_allow plus exceptions {(type, major, minor): access set}."""

    def __init__(self):
        self.reset(False)

    def reset(self, allow):
        self.default_allow = allow
        self.exceptions = {}
        if not allow:
            for text in DEFAULT_ALLOWED:
                t, ma, mi, acc = parse_rule(text)
                self.exceptions[(t, ma, mi)] = acc

    def apply(self, allow, dtype, major, minor, acc, field):
        # an exception means the opposite of the default: allow rules add to a
        # deny-by-default state, deny rules to an allow-by-default one
        key = (dtype, major, minor)
        if allow != self.default_allow:
            self.exceptions[key] = self.exceptions.get(key, frozenset()) | acc
            return
        self._check_no_hole(key, acc, field)
        for k in list(self.exceptions):
            if _covers(key, k):
                left = self.exceptions[k] - acc
                if left:
                    self.exceptions[k] = left
                else:
                    del self.exceptions[k]

    def _check_no_hole(self, key, acc, field):
        # mknod through a wildcard ("c *:* m", which every container has) is
        # tolerated under a deny of more than that: making a node gives no
        # access to the device; a deny of m alone would have no effect at all
        for k, have in self.exceptions.items():
            overlap = have & acc
            if k != key and _covers(k, key) and (overlap - {"m"} or (overlap and acc == {"m"})):
                raise ConfigError(field, f"rule {rule_string(*key, acc)!r} cannot be applied: it "
                                  f"would punch a hole in the wildcard rule "
                                  f"{rule_string(*k, have)!r}")

    def rules(self):
        return tuple(rule_string(t, ma, mi, acc) for (t, ma, mi), acc in self.exceptions.items())


def _covers(outer, inner):
    """outer's type/major/minor match every device inner's do."""
    return outer[0] == inner[0] and all(o == WILDCARD or o == i
                                        for o, i in zip(outer[1:], inner[1:]))


def device_state(rules):
    """The config's device rules (a list of dicts) -> (default_allow, exception rule strings)."""
    state = DeviceState()
    for i, r in enumerate(rules or ()):
        field = f"{FIELD}[{i}]"
        allow = bool(r.get("allow", False))
        dtype = r.get("type") or "a"
        if dtype not in ("a", "c", "b"):
            raise ConfigError(field + ".type", f"invalid device type {dtype!r}: must be a, c or b")
        major = r.get("major", WILDCARD)
        minor = r.get("minor", WILDCARD)
        major = WILDCARD if major is None else major
        minor = WILDCARD if minor is None else minor
        for name, n in (("major", major), ("minor", minor)):
            if n < WILDCARD:
                raise ConfigError(f"{field}.{name}", f"invalid device number {n}")
        acc = _access(r.get("access") or _ACCESS_ORDER, field + ".access")
        if dtype == "a":
            if (major, minor) != (WILDCARD, WILDCARD):
                raise ConfigError(field, 'a rule of type "a" (all devices) cannot name a '
                                  'major or minor number')
            if acc == frozenset(_ACCESS_ORDER):
                state.reset(allow)
                continue
            # "a *:* m": the same access for every char and block device
            for t in ("c", "b"):
                state.apply(allow, t, WILDCARD, WILDCARD, acc, field)
            continue
        state.apply(allow, dtype, major, minor, acc, field)
    return state.default_allow, state.rules()


def parse_devices_list(text):
    """v1 devices.list -> (default_allow, exception rule strings).

    The kernel shows "a *:* rwm" alone for an allow-by-default cgroup (its
    deny exceptions are not shown); otherwise the allowed rules.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines == ["a *:* rwm"]:
        return True, ()
    return False, tuple(rule_string(*parse_rule(ln)) for ln in lines)


def v1_writes(target, current=None):
    """[(file, rule)] that take a v1 devices cgroup from `current` to `target`.

    Both are (default_allow, rules).  From an allow-by-default state (a fresh
    cgroup, or one whose exceptions the kernel does not show) the whole state
    is written after a reset; between two deny-by-default states only the
    differences are, so a running container never passes through deny-all.
    """
    allow, rules = target
    if current is not None and not current[0] and not allow:
        have = {_key(r): parse_rule(r)[3] for r in current[1]}
        want = {_key(r): parse_rule(r)[3] for r in rules}
        out = []
        for k, acc in have.items():
            gone = acc - want.get(k, frozenset())
            if gone:
                out.append(("devices.deny", rule_string(*k, gone)))
        for k, acc in want.items():
            new = acc - have.get(k, frozenset())
            if new:
                out.append(("devices.allow", rule_string(*k, new)))
        return out
    out = [("devices.allow" if allow else "devices.deny", "a")]
    out += [("devices.deny" if allow else "devices.allow", r) for r in rules]
    return out


def _key(text):
    t, ma, mi, _ = parse_rule(text)
    return (t, ma, mi)
