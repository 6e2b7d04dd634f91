#!/bin/bash
# Set up (idempotent) and run the whole test suite, as root:
#     sudo ./scripts/test.sh [pytest args...]
# It is `./install.sh --test`, the cgroup v2 guest's cache, then `pytest -q`; the README and
# .ci/run both call this script so the two can never drift apart.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./install.sh --test
# The cgroup v2 tests run in a QEMU guest unless /sys/fs/cgroup is pure cgroup v2:
# cache qemu-system-x86, udev, kmod (apt), virtme-ng (pip, private venv) and an
# unpacked Debian kernel in /var/cache/pyrunc-cgroup2 (idempotent; ~15 s first time).
if ! awk '$2 == "/sys/fs/cgroup" && $3 == "cgroup2" { v2 = 1 } $3 == "cgroup" { v1 = 1 }
          END { exit !(v2 && !v1) }' /proc/mounts; then
    tests/cgroup2/run-in-guest.sh --setup
fi
exec .venv/bin/python -m pytest -q "$@"
