"""Runner for the cgroup v2 suite: natively on a pure v2 host, else in a QEMU guest."""
