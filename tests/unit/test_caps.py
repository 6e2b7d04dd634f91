"""The capability table, checked against python-prctl's (built from the kernel headers)."""
import pytest

from pyrunc import caps


@pytest.fixture
def kernel_last_cap(monkeypatch):
    def set_last(n):
        monkeypatch.setattr(caps, "_last_cap", n)
    return set_last


def test_table_covers_every_cap_up_to_checkpoint_restore():
    assert len(caps.NAMES) == 41
    assert caps.NAMES[40] == "CAP_CHECKPOINT_RESTORE"
    assert len(set(caps.NAMES)) == 41
    assert all(n.startswith("CAP_") for n in caps.NAMES)


def test_numbers_agree_with_python_prctl():
    _prctl = pytest.importorskip("_prctl")
    theirs = {n: getattr(_prctl, n) for n in dir(_prctl)
              if n.startswith("CAP_") and n not in ("CAP_EFFECTIVE", "CAP_PERMITTED",
                                                     "CAP_INHERITABLE", "CAP_LAST_CAP")}
    assert len(theirs) >= 38  # a build that names nearly none would prove nothing
    for name, num in theirs.items():
        assert caps.NUMBERS[name] == num, name


def test_last_cap_is_the_running_kernels():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        expected = int(f.read())
    caps._last_cap = None
    assert caps.last_cap() == expected


def test_mask_of_known_names(kernel_last_cap):
    kernel_last_cap(40)
    assert caps.mask_of(["CAP_CHOWN", "CAP_KILL"]) == 1 | 1 << 5
    assert caps.mask_of(["CAP_CHECKPOINT_RESTORE"]) == 1 << 40   # above 32 bits
    assert caps.mask_of([]) == 0
    assert caps.mask_of(None) == 0
    assert caps.mask_of(["CAP_KILL", "CAP_KILL"]) == 1 << 5


def test_unknown_names_are_ignored_not_fatal(kernel_last_cap):
    kernel_last_cap(40)
    numbers, ignored = caps.split_known(["CAP_CHOWN", "CAP_BOGUS", "cap_kill", "KILL"])
    assert numbers == [0]
    # exact names only, like runc: lower case or without the prefix is unknown
    assert ignored == ["CAP_BOGUS", "cap_kill", "KILL"]
    assert caps.mask_of(["CAP_BOGUS", "CAP_SYS_ADMIN"]) == 1 << 21


def test_caps_above_the_kernels_last_cap_are_unavailable(kernel_last_cap):
    kernel_last_cap(38)
    numbers, ignored = caps.split_known(["CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"])
    assert numbers == [38]
    assert ignored == ["CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def test_warning_text_is_runcs():
    assert caps.unknown_warning([]) is None
    assert (caps.unknown_warning(["CAP_ZZ", "CAP_AA", "CAP_ZZ"])
            == "ignoring unknown or unavailable capabilities: [CAP_AA CAP_ZZ]")


def test_names_of_inverts_mask_of(kernel_last_cap):
    kernel_last_cap(40)
    names = ("CAP_CHOWN", "CAP_NET_RAW", "CAP_BPF", "CAP_CHECKPOINT_RESTORE")
    assert caps.names_of(caps.mask_of(names)) == names
    assert caps.name_of(99) == "CAP_99"
