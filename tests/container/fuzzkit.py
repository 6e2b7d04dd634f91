"""Hypothesis strategies that mutate the JSON documents a runtime is handed
(config.json, exec's process.json), and checks on the errors they provoke.

Shared by tests/unit/test_fuzz_validator.py (validator, semantic rules,
typing, planning; in process) and tests/container/test_fuzz_create.py (the
same documents through a real `pyrunc create` / `exec --process`).

The bases are the configs real clients wrote (shared/fixtures/real-configs)
and configs generated from pieces of them; a mutation picks one place in the
document and deletes it, replaces it with an awkward value (wrong type,
boundary number, NUL byte, lone surrogate, "..", NaN, ...), adds a key or
element, or duplicates one.  Nothing here imports pyrunc's runtime code.
"""
import copy
import json
import math
import os
import re
from pathlib import Path

from hypothesis import strategies as st

_REPO = Path(__file__).resolve().parents[2]
FIXTURES = next((str(d) for d in (_REPO.parent / "shared" / "fixtures" / "real-configs",
                                  Path("/work/shared/fixtures/real-configs"))
                 if d.is_dir()), None)

# Values that break naive code: integer limits of Go and C types, Python's
# 4300-digit int->str limit, floats JSON allows only as Python extensions,
# strings a path or a C string cannot hold.
EDGE_INTS = [0, 1, -1, 7, 2**31 - 1, 2**31, -2**31 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
             2**64, -2**63 - 1, 10**30]
EDGE_FLOATS = [0.5, -0.0, 1e308, -1e-300, math.inf, -math.inf, math.nan]
EDGE_STRINGS = ["", " ", "/", ".", "..", "../../..", "/../../../etc", "rootfs", "a\x00b",
                "line\nbreak", "x" * 5000, "\u00e9t\u00e9", "\ud800", "\uffff", "-1", "0", "1.5",
                "true", "null", "{}", "%s%n", "/proc/self/ns/net", "/dev/null", "/nonexistent",
                "CAP_SYS_ADMIN", "CAP_BOGUS", "RLIMIT_NOFILE", "RLIMIT_BOGUS", "SCMP_ACT_ERRNO",
                "SCMP_ARCH_X86_64", "bind", "rbind", "ro", "nosuid", "size=1k", "mode=9999",
                "private", "rshared", "pid", "user", "network", "a=b", "=", "K=", "c", "b", "u",
                "rwm", "x", "*", "uid=0", "0:0"]

_STRING_TWISTS = (
    lambda s: "",
    lambda s: s + "/..",
    lambda s: "../" + s,
    lambda s: s.lstrip("/"),
    lambda s: s + "\x00",
    lambda s: s + "\ud800",
    lambda s: (s or "x") * 300,
    lambda s: s.upper(),
    lambda s: s + "=",
    lambda s: s.replace("/", "//"),
)
_INT_TWISTS = (
    lambda n: n + 1,
    lambda n: -n - 1,
    lambda n: n * 2**32,
    lambda n: float(n),
    lambda n: str(n),
    lambda n: bool(n),
    lambda n: n * 10**40,        # past every fixed-width integer
)


def _load(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def real_configs():
    """{name: config dict} of every *-config.json, root.path made "rootfs"."""
    if FIXTURES is None:
        return {}
    out = {}
    for name in sorted(os.listdir(FIXTURES)):
        if name.endswith("-config.json"):
            doc = _load(name)
            doc["root"]["path"] = "rootfs"
            out[name] = doc
    return out


def real_processes():
    if FIXTURES is None:
        return {}
    return {n: _load(n) for n in sorted(os.listdir(FIXTURES)) if n.endswith("-process.json")}


def _keys_of(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            _keys_of(v, out)
    elif isinstance(node, list):
        for v in node:
            _keys_of(v, out)
    return out


def vocabulary(docs):
    """Every key the real documents use: an added key is then often a real one."""
    keys = set()
    for d in docs:
        _keys_of(d, keys)
    return sorted(keys)


# --------------------------------------------------------------------- values

json_scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(EDGE_INTS), st.integers(-2**70, 2**70),
    st.sampled_from(EDGE_FLOATS), st.sampled_from(EDGE_STRINGS), st.text(max_size=12))


def json_values(keys=()):
    key = st.sampled_from(list(keys) or ["x"]) | st.text(max_size=8)
    return st.recursive(json_scalars,
                        lambda inner: st.lists(inner, max_size=3) |
                        st.dictionaries(key, inner, max_size=3),
                        max_leaves=6)


# --------------------------------------------------------------------- paths

def walk(node, prefix=()):
    """Every (path tuple) in a JSON tree, the root () included."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, prefix + (i,))


def get(node, path):
    for seg in path:
        node = node[seg]
    return node


_SEGMENT = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def parse_json_path(text):
    """'mounts[2].destination' / 'linux.sysctl["a.b"]' -> ['mounts', 2, 'destination']."""
    segs, pos = [], 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"not a JSON path: {text!r} (at {pos})")
        name, index, quoted = m.groups()
        segs.append(name if name is not None else int(index) if index is not None
                    else json.loads(quoted))
        pos = m.end()
    return segs


def path_fits(doc, text):
    """Whether an error's JSON path names a place in `doc`: the value itself or,
    for a missing required member, its parent."""
    segs = parse_json_path(text)
    node = doc
    for i, seg in enumerate(segs):
        try:
            node = node[seg]
        except (KeyError, IndexError, TypeError):
            return i == len(segs) - 1
    return True


# --------------------------------------------------------------------- mutations

def _apply(draw, doc, keys):
    # the root itself only now and then: replacing it fails at the first check
    paths = list(walk(doc))[1:] or [()]
    path = () if draw(st.integers(0, 40)) == 0 else draw(st.sampled_from(paths))
    op = draw(st.sampled_from(["replace", "replace", "twist", "delete", "add", "dup", "wrap"]))
    if path == () and op in ("delete", "dup"):
        op = "replace"
    value = get(doc, path)
    if op == "twist":
        if isinstance(value, str):
            new = draw(st.sampled_from(_STRING_TWISTS))(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            new = draw(st.sampled_from(_INT_TWISTS))(value)
        elif isinstance(value, bool):
            new = draw(st.sampled_from([not value, int(value), str(value).lower(), None]))
        else:
            new = draw(st.sampled_from([[], {}, None, "", 0]))
        return _set(doc, path, new)
    if op == "replace":
        return _set(doc, path, draw(json_values(keys)))
    if op == "wrap":
        return _set(doc, path, draw(st.sampled_from([[value], {"x": value}, json.dumps(value)])))
    if op == "delete":
        parent = get(doc, path[:-1])
        del parent[path[-1]]
        return doc
    if op == "dup":
        parent = get(doc, path[:-1])
        if isinstance(parent, list):
            parent.insert(path[-1], copy.deepcopy(value))
        else:
            parent[draw(st.sampled_from(keys or ["x"]))] = copy.deepcopy(value)
        return doc
    # add: a new member or element next to the chosen value
    if isinstance(value, dict):
        value[draw(st.sampled_from(keys or ["x"]) | st.text(max_size=8))] = draw(json_values(keys))
    elif isinstance(value, list):
        extra = copy.deepcopy(value[0]) if value and draw(st.booleans()) else draw(json_values(keys))
        value.append(extra)
    else:
        return _set(doc, path, draw(json_values(keys)))
    return doc


def _set(doc, path, new):
    if path == ():
        return new
    get(doc, path[:-1])[path[-1]] = new
    return doc


@st.composite
def mutated(draw, bases, keys=(), min_mutations=1, max_mutations=3):
    """A deep copy of one of `bases` (a list, or a strategy of documents) with
    between min and max mutations applied."""
    base = draw(bases if isinstance(bases, st.SearchStrategy) else st.sampled_from(bases))
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_mutations, max_mutations))):
        doc = _apply(draw, doc, list(keys))
    return doc


# --------------------------------------------------------------------- generated configs

NAMESPACES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]
MOUNT_TYPES = ["bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "none", "overlay"]
MOUNT_OPTIONS = ["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "private", "rslave",
                 "mode=755", "size=64k", "strictatime", "tmpcopyup", "rro", "idmap", "bogus",
                 "nr_inodes=10"]
# pieces a generated config may borrow from a real one
_SECTIONS = [("hostname",), ("annotations",), ("mounts",), ("process", "env"),
             ("process", "user"), ("process", "capabilities"), ("process", "rlimits"),
             ("process", "apparmorProfile"), ("process", "oomScoreAdj"),
             ("linux", "resources"), ("linux", "seccomp"), ("linux", "sysctl"),
             ("linux", "maskedPaths"), ("linux", "readonlyPaths"), ("linux", "cgroupsPath")]


def _mount(wild):
    if not wild:   # mounts that work in a busybox rootfs
        return st.sampled_from([
            {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]},
            {"destination": "/tmp/x", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/mnt", "type": "bind", "source": "/etc", "options": ["rbind", "ro"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/etc/hosts",
             "options": ["bind", "nosuid", "nodev"]},
            {"destination": "/a/b/c", "type": "tmpfs", "source": "none",
             "options": ["nosuid", "noexec", "mode=700"]}])
    return st.fixed_dictionaries(
        {"destination": st.sampled_from(["/mnt", "/tmp/x", "/dev/shm", "/proc", "mnt", "/etc/hosts",
                                         "/sys/fs/cgroup", "/a/b/c"]),
         "type": st.sampled_from(MOUNT_TYPES),
         "source": st.sampled_from(["tmpfs", "none", "/dev/null", "/etc/hosts", "proc",
                                    "/nonexistent", "rootfs", "."])},
        optional={"options": st.lists(st.sampled_from(MOUNT_OPTIONS), max_size=4)})


@st.composite
def generated_config(draw, base, donors, wild=True):
    """`base` plus borrowed sections of `donors`, namespaces, id maps, mounts,
    rlimits and devices.  wild=False keeps to choices a busybox container can
    run (for real creates); wild=True is schema-valid more often than not."""
    doc = copy.deepcopy(base)
    for section in draw(st.lists(st.sampled_from(_SECTIONS), max_size=5, unique=True)):
        donor = draw(st.sampled_from(donors))
        try:
            value = get(donor, section)
        except (KeyError, TypeError):
            continue
        get(doc, section[:-1])[section[-1]] = copy.deepcopy(value)
    ns = [n["type"] for n in doc["linux"]["namespaces"]]
    if not wild or draw(st.integers(0, 3)):   # mostly the usual set plus some, now and then anything
        ns += draw(st.lists(st.sampled_from(["user", "cgroup", "time"]), unique=True))
    else:
        ns = draw(st.lists(st.sampled_from(NAMESPACES), unique=True, max_size=len(NAMESPACES)))
    doc["linux"]["namespaces"] = [{"type": t} for t in dict.fromkeys(ns)]
    if "user" in ns:
        size = draw(st.sampled_from([65536, 65536, 1, 0, 2**32] if wild else [65536, 1]))
        host = 100000 if wild else 0
        doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host, "size": size}]
        doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host, "size": size}]
    doc["mounts"] = doc.get("mounts", []) + draw(st.lists(_mount(wild), max_size=3))
    limits = EDGE_INTS[:9] if wild else [0, 1, 7, 1024, 2**31 - 1]
    if draw(st.booleans()):
        doc["process"]["rlimits"] = draw(st.lists(st.fixed_dictionaries(
            {"type": st.sampled_from(["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE"] +
                                     (["RLIMIT_X"] if wild else [])),
             "soft": st.sampled_from(limits), "hard": st.just(2**31 - 1) if not wild
             else st.sampled_from(limits)}),
            max_size=3, unique_by=lambda r: r["type"] if not wild else id(r)))
    if draw(st.booleans()):
        doc["linux"]["devices"] = draw(st.lists(st.fixed_dictionaries(
            {"path": st.sampled_from(["/dev/fuse", "/dev/null", "/dev/x/y", "dev/z", "/dev/../etc/q"]
                                     if wild else ["/dev/fuse", "/dev/x/y", "/dev/net/tun"]),
             "type": st.sampled_from(["c", "b", "u", "p", "x"] if wild else ["c"]),
             "major": st.sampled_from([1, 10, 0, -1, 2**32] if wild else [10]),
             "minor": st.sampled_from([3, 229, 0, -1] if wild else [229, 200])}), max_size=2,
            unique_by=lambda d: d["path"] if not wild else id(d)))
    if wild and draw(st.booleans()):
        doc["process"]["terminal"] = draw(st.booleans())
    return doc


# --------------------------------------------------------------------- checks

def one_line(message):
    """An error message fit for a client: one non-empty line, no traceback."""
    return bool(message.strip()) and "\n" not in message and "\r" not in message \
        and "Traceback" not in message


def dumps(doc):
    """Serialise as a client could: NaN/Infinity and lone surrogates included
    (json.loads accepts the first, the \\ud800 escape decodes to the second)."""
    return json.dumps(doc, allow_nan=True)
