#!/bin/bash
# Set up (idempotent) and run the whole test suite, as root:
#     sudo ./scripts/test.sh [pytest args...]
# It is exactly `./install.sh && .venv/bin/python -m pytest -q`; the README and
# .ci/run both call this script so the two can never drift apart.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./install.sh
exec .venv/bin/python -m pytest -q "$@"
