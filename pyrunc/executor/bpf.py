"""The cgroup v2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program built
from a device state (default + exception rules, see pyrunc.plan.devices).

The kernel runs the program on every device access in the cgroup with a
struct bpf_cgroup_dev_ctx in r1:
    u32 access_type   low 16 bits: BPF_DEVCG_DEV_BLOCK (1) / _CHAR (2)
                      high 16 bits: BPF_DEVCG_ACC_MKNOD (1) | _READ (2) | _WRITE (4)
    u32 major, u32 minor
and allows the access when it returns 1.

The program loads those into r2 (type), r3 (access), r4 (major), r5 (minor),
then has one block per exception rule: each test that fails jumps to the
next block, a block whose tests all pass returns the exception's verdict
(the opposite of the default); after the last block the default is returned.
Instructions are encoded here by hand (struct bpf_insn: u8 code, u8 dst:4
src:4, s16 off, s32 imm, little-endian) so nothing beyond cffi is needed.
"""
import struct

from pyrunc.plan.devices import WILDCARD, parse_rule

# instruction classes, sizes, modes, sources and operations (linux/bpf_common.h, bpf.h)
LDX, ALU, JMP, ALU64 = 0x01, 0x04, 0x05, 0x07
W, MEM = 0x00, 0x60
K, X = 0x00, 0x08
AND, RSH, MOV = 0x50, 0x70, 0xB0
JNE, EXIT = 0x50, 0x90

DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
ALL_ACCESS = ACC_MKNOD | ACC_READ | ACC_WRITE

R0, R1, R2, R3, R4, R5 = range(6)


def insn(code, dst=0, src=0, off=0, imm=0):
    return (code, dst, src, off, imm)


def encode(insns):
    return b"".join(struct.pack("<BBhi", c, (s << 4) | d, o, i) for c, d, s, o, i in insns)


def decode(data):
    out = []
    for n in range(0, len(data), 8):
        c, regs, o, i = struct.unpack_from("<BBhi", data, n)
        out.append((c, regs & 0xF, regs >> 4, o, i))
    return out


def _prologue():
    return [
        insn(LDX | MEM | W, R2, R1, 0),       # r2 = ctx->access_type
        insn(ALU | AND | K, R2, imm=0xFFFF),  # r2 &= 0xffff: the device type
        insn(LDX | MEM | W, R3, R1, 0),       # r3 = ctx->access_type
        insn(ALU | RSH | K, R3, imm=16),      # r3 >>= 16: the access asked for
        insn(LDX | MEM | W, R4, R1, 4),       # r4 = ctx->major
        insn(LDX | MEM | W, R5, R1, 8),       # r5 = ctx->minor
    ]


def _rule_block(rule, verdict):
    """Instructions for one rule; "NEXT" in off marks jumps to the next block."""
    dtype, major, minor, acc = parse_rule(rule)
    out = []
    if dtype != "a":
        out.append(insn(JMP | JNE | K, R2, off="NEXT", imm=_TYPES[dtype]))
    mask = sum(_ACCESS[a] for a in acc)
    if mask != ALL_ACCESS:
        # every access asked for must be one the rule names: (r3 & mask) == r3
        out += [insn(ALU | MOV | X, R1, R3),
                insn(ALU | AND | K, R1, imm=mask),
                insn(JMP | JNE | X, R1, R3, off="NEXT")]
    if major != WILDCARD:
        out.append(insn(JMP | JNE | K, R4, off="NEXT", imm=major))
    if minor != WILDCARD:
        out.append(insn(JMP | JNE | K, R5, off="NEXT", imm=minor))
    out += [insn(ALU64 | MOV | K, R0, imm=verdict), insn(JMP | EXIT)]
    return out


def device_filter(default_allow, rules):
    """The program (a list of (code, dst, src, off, imm)) for a device state."""
    prog = _prologue()
    verdict = 0 if default_allow else 1
    for rule in rules:
        block = _rule_block(rule, verdict)
        # a jump's offset counts from the instruction after it to the next block
        for i, (c, d, s, o, imm) in enumerate(block):
            if o == "NEXT":
                o = len(block) - (i + 1)
            prog.append((c, d, s, o, imm))
    prog += [insn(ALU64 | MOV | K, R0, imm=1 if default_allow else 0), insn(JMP | EXIT)]
    return prog


def install(sys, cgroup_dir, default_allow, rules):
    """Load the filter and attach it to cgroup_dir, replacing device programs
    attached there before (attach first, then detach: never a moment without one)."""
    C = sys.C
    prog_fd = sys.bpf_prog_load(C.BPF_PROG_TYPE_CGROUP_DEVICE,
                                encode(device_filter(default_allow, rules)))
    try:
        cg_fd = sys.open(cgroup_dir, sys.O_DIRECTORY)
        try:
            old = sys.bpf_prog_query(cg_fd, C.BPF_CGROUP_DEVICE) or []
            sys.bpf_prog_attach(prog_fd, cg_fd, C.BPF_CGROUP_DEVICE, C.BPF_F_ALLOW_MULTI)
            for prog_id in old:
                fd = sys.bpf_prog_get_fd_by_id(prog_id)
                try:
                    sys.bpf_prog_detach(fd, cg_fd, C.BPF_CGROUP_DEVICE)
                finally:
                    sys.close(fd)
        finally:
            sys.close(cg_fd)
    finally:
        if prog_fd is not None:
            sys.close(prog_fd)
