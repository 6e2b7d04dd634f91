"""The cgroup v2 device filter: instruction-level expectations, and an
interpreter that runs the program against the rules' meaning."""
import struct

from hypothesis import given, settings, strategies as st

from pyrunc.executor import bpf
from pyrunc.executor.bpf import decode, device_filter, encode, install
from pyrunc.plan.devices import WILDCARD, device_state, parse_rule

PROLOGUE = [(0x61, 2, 1, 0, 0), (0x54, 2, 0, 0, 0xFFFF), (0x61, 3, 1, 0, 0),
            (0x74, 3, 0, 0, 16), (0x61, 4, 1, 4, 0), (0x61, 5, 1, 8, 0)]
EXIT = (0x95, 0, 0, 0, 0)


def test_one_exact_rule():
    assert device_filter(False, ("c 1:3 rwm",)) == PROLOGUE + [
        (0x55, 2, 0, 4, 2),     # type != char: to the next block
        (0x55, 4, 0, 3, 1),     # major != 1
        (0x55, 5, 0, 2, 3),     # minor != 3
        (0xB7, 0, 0, 0, 1), EXIT,     # allow
        (0xB7, 0, 0, 0, 0), EXIT,     # default: deny
    ]


def test_partial_access_and_wildcard_minor():
    assert device_filter(False, ("c 136:* rw",)) == PROLOGUE + [
        (0x55, 2, 0, 6, 2),
        (0xBC, 1, 3, 0, 0),     # w1 = w3 (the access asked for)
        (0x54, 1, 0, 0, 6),     # w1 &= read|write
        (0x5D, 1, 3, 3, 0),     # asked for more than that: next block
        (0x55, 4, 0, 2, 136),
        (0xB7, 0, 0, 0, 1), EXIT,
        (0xB7, 0, 0, 0, 0), EXIT,
    ]


def test_blacklist_returns_deny_for_exceptions_and_jumps_chain():
    prog = device_filter(True, ("b 8:* rwm", "c *:* m"))
    assert prog[-2:] == [(0xB7, 0, 0, 0, 1), EXIT]
    blocks = prog[6:-2]
    assert blocks[:4] == [(0x55, 2, 0, 3, 1), (0x55, 4, 0, 2, 8), (0xB7, 0, 0, 0, 0), EXIT]
    assert blocks[4:] == [(0x55, 2, 0, 5, 2), (0xBC, 1, 3, 0, 0), (0x54, 1, 0, 0, 1),
                          (0x5D, 1, 3, 2, 0), (0xB7, 0, 0, 0, 0), EXIT]


def test_encoding_is_struct_bpf_insn():
    data = encode([(0x61, 2, 1, 4, 0), (0x55, 4, 0, -1, 0x7FFFFFFF)])
    assert data == bytes([0x61, 0x12, 4, 0, 0, 0, 0, 0,
                          0x55, 0x04, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
    assert decode(data) == [(0x61, 2, 1, 4, 0), (0x55, 4, 0, -1, 0x7FFFFFFF)]


# --- running the program -------------------------------------------------------------------

M32 = 0xFFFFFFFF


def run(prog, dtype, major, minor, access):
    """Interpret the instructions this encoder emits (any other opcode fails).
    r1 holds the context until the prologue has read it."""
    ctx = struct.pack("<III", (access << 16) | dtype, major, minor)
    r = [0, "ctx"] + [0] * 9
    pc = 0
    for _ in range(10000):
        code, dst, src, off, imm = prog[pc]
        pc += 1
        if code == 0x61:
            assert src == 1 and r[1] == "ctx", "load from something else than the context"
            r[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:
            r[dst] = r[dst] & imm & M32
        elif code == 0x74:
            r[dst] = (r[dst] & M32) >> imm
        elif code == 0xBC:
            r[dst] = r[src] & M32
        elif code == 0xB7:
            r[dst] = imm
        elif code == 0x55:
            if r[dst] != (imm & M32):
                pc += off
        elif code == 0x5D:
            if r[dst] != r[src]:
                pc += off
        elif code == 0x95:
            return r[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("no exit")


ACC = {"m": 1, "r": 2, "w": 4}


def reference(default_allow, rules, dtype, major, minor, access):
    """What the state means: an exception covering the whole access flips the default."""
    for text in rules:
        t, ma, mi, acc = parse_rule(text)
        mask = sum(ACC[a] for a in acc)
        if t in ("a", {1: "b", 2: "c"}[dtype]) and ma in (WILDCARD, major) and \
                mi in (WILDCARD, minor) and access & ~mask == 0:
            return 0 if default_allow else 1
    return 1 if default_allow else 0


def test_defaults_allow_null_and_deny_disks():
    allow, rules = device_state([{"allow": False, "access": "rwm"}])
    prog = device_filter(allow, rules)
    assert run(prog, 2, 1, 3, 2 | 4) == 1        # /dev/null rw
    assert run(prog, 2, 136, 7, 2) == 1          # a pty
    assert run(prog, 1, 254, 0, 2) == 0          # /dev/vda read
    assert run(prog, 1, 254, 0, 1) == 1          # mknod of any block device
    assert run(prog, 2, 1, 11, 4) == 0           # /dev/kmsg


numbers = st.one_of(st.just(None), st.integers(0, 3))
rules_st = st.lists(st.fixed_dictionaries({
    "allow": st.booleans(), "type": st.sampled_from(["c", "b"]),
    "major": numbers, "minor": numbers,
    "access": st.sampled_from(["r", "w", "m", "rw", "rm", "wm", "rwm"])}), max_size=6)


@settings(max_examples=300, deadline=None)
@given(rules_st, st.booleans(), st.sampled_from([1, 2]), st.integers(0, 3), st.integers(0, 3),
       st.integers(1, 7))
def test_program_agrees_with_the_state(rules, allow_all_first, dtype, major, minor, access):
    rules = [{k: v for k, v in r.items() if v is not None} for r in rules]
    head = [{"allow": allow_all_first, "access": "rwm"}]
    try:
        state = device_state(head + rules)
    except Exception as e:     # a refused hole punch: nothing to compile
        assert "punch a hole" in str(e)
        return
    prog = device_filter(*state)
    assert run(prog, dtype, major, minor, access) == \
        reference(*state, dtype, major, minor, access)


# --- loading and attaching --------------------------------------------------------------------

class FakeSys:
    class C:
        BPF_PROG_TYPE_CGROUP_DEVICE = 15
        BPF_CGROUP_DEVICE = 6
        BPF_F_ALLOW_MULTI = 2
    O_DIRECTORY = 0o200000

    def __init__(self, attached=()):
        self.calls = []
        self.attached = list(attached)

    def bpf_prog_load(self, t, insns):
        self.calls.append(("load", t, len(insns)))
        return 50

    def open(self, path, flags):
        self.calls.append(("open", path))
        return 51

    def bpf_prog_query(self, fd, t):
        return list(self.attached)

    def bpf_prog_attach(self, prog, fd, t, flags):
        self.calls.append(("attach", prog, fd, t, flags))

    def bpf_prog_get_fd_by_id(self, i):
        return 100 + i

    def bpf_prog_detach(self, prog, fd, t):
        self.calls.append(("detach", prog, fd, t))

    def close(self, fd):
        self.calls.append(("close", fd))


def test_install_attaches_then_detaches_the_old_programs():
    sys = FakeSys(attached=[7])
    install(sys, "/cg/c", False, ("c 1:3 rwm",))
    n = len(encode(device_filter(False, ("c 1:3 rwm",))))
    assert sys.calls == [("load", 15, n), ("open", "/cg/c"), ("attach", 50, 51, 6, 2),
                         ("detach", 107, 51, 6), ("close", 107), ("close", 51), ("close", 50)]


def test_module_constants_match_linux_headers():
    from pyrunc import syscalls
    assert syscalls.C.BPF_PROG_TYPE_CGROUP_DEVICE == 15
    assert syscalls.C.BPF_CGROUP_DEVICE == 6
    assert (bpf.DEV_BLOCK, bpf.DEV_CHAR, bpf.ACC_MKNOD, bpf.ACC_READ, bpf.ACC_WRITE) == \
        (1, 2, 1, 2, 4)
