"""cgroup v2 tests that run in the QEMU guest (or natively on a pure v2 host)."""
