#!/bin/bash
# Set up pyrunc on a fresh Debian 12 machine, as root.  Idempotent and quick
# when nothing changed: safe to run before every test run.
#
#   ./install.sh          system packages + .venv next to this script + pyrunc (editable)
#   ./install.sh --test   also the real clients the integration tests drive
#
# Environment: PYRUNC_PYTHON (default /usr/bin/python3) is the interpreter the
# venv is made from.  It must be Debian's python, never a pyenv shim: the
# `pyrunc` entry point runs that interpreter on every runtime call.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYRUNC_PYTHON:-/usr/bin/python3}"
VENV="$HERE/.venv"

# Build deps of the PyPI packages (python-prctl compiles against libcap), musl
# for pyrunc-init (pyrunc/waiter.c), the busybox rootfs the demo and tests use,
# runc as the differential oracle, and the official OCI schemas as a
# validation oracle.
PACKAGES=(python3-venv python3-dev gcc musl-tools libcap-dev libseccomp-dev busybox-static runc uidmap
          golang-github-opencontainers-specs-dev)
TEST_PACKAGES=(containerd docker.io podman crun strace)

with_test=0
for arg in "$@"; do
    case "$arg" in
        --test) with_test=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must run as root (apt-get and containers need it)" >&2
    exit 1
fi

log() { echo "install.sh: $*" >&2; }

missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
            || echo "$p"
    done
}

apt_install() {
    local missing
    missing=$(missing_packages "$@")
    [ -z "$missing" ] && return 0
    log "installing:" $missing
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086  # word splitting is wanted
    apt-get install -y -q --no-install-recommends $missing
}

apt_install "${PACKAGES[@]}"
if [ "$with_test" = 1 ]; then
    apt_install "${TEST_PACKAGES[@]}"
fi

# A venv made by another interpreter (e.g. pyenv's) would make every pyrunc
# call pay for a shim; rebuild it from $PYTHON.
want_home="$(dirname "$(readlink -f "$PYTHON")")"
if [ -f "$VENV/pyvenv.cfg" ] && ! grep -qx "home = $want_home" "$VENV/pyvenv.cfg"; then
    log "recreating $VENV (made by another python)"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when what the install depends on changed: pip with build
# isolation takes seconds even when nothing is to do.
stamp="$VENV/.pyrunc-install-stamp"
want_stamp="$(cat "$HERE/pyproject.toml" "$HERE/setup.py" "$HERE/pyrunc/_libc_build.py" \
                  "$HERE/pyrunc/clone_vm.c" \
              | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] && [ -x "$VENV/bin/pyrunc" ] \
   && (cd "$HERE" && "$VENV/bin/python" -c 'import pyrunc._libc, pytest, hypothesis, jsonschema, prctl, pyroute2') 2>/dev/null
then
    log "pyrunc is installed and up to date in $VENV"
else
    log "installing pyrunc into $VENV"
    # compat mode: a plain path in a .pth file.  The default editable mode
    # installs an import hook that costs every pyrunc call ~20 ms at startup.
    (cd "$HERE" && "$VENV/bin/python" -m pip install -q -e ".[test]" \
        --config-settings editable_mode=compat)
    # The editable install builds the cffi module in place only with some
    # setuptools versions; build it here so `import pyrunc._libc` always works.
    (cd "$HERE" && "$VENV/bin/python" pyrunc/_libc_build.py >/dev/null)
    echo "$want_stamp" > "$stamp"
fi

# pyrunc-init, the created container's pid 1 (pyrunc/waiter.c): static, so
# that it maps no host library, and with musl, so that it is a few pages.
waiter_src="$HERE/pyrunc/waiter.c" waiter="$HERE/pyrunc/_waiter"
if [ ! -x "$waiter" ] || [ "$waiter_src" -nt "$waiter" ]; then
    log "building $waiter"
    cc=musl-gcc; command -v "$cc" >/dev/null || cc=gcc
    "$cc" -static -Os -s -Wall -Wextra -Werror -o "$waiter.tmp" "$waiter_src"
    mv "$waiter.tmp" "$waiter"
fi

# The `pyrunc` command.  pip's console script starts Python with `site`, whose
# scan of site-packages costs every runtime call milliseconds; the launcher
# runs `python -I -S` with the import path site would have made (see
# pyrunc/launcher.py).  Written on every run: pip rewrites the script on install.
(cd "$HERE" && "$VENV/bin/python" -m pyrunc.launcher "$VENV/bin/pyrunc")

