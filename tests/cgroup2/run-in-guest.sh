#!/usr/bin/env bash
# Run one command as root inside a throw-away QEMU guest whose /sys/fs/cgroup
# is a pure cgroup v2 hierarchy, for hosts (like ours) that mount the v1
# controllers and so cannot give a container memory/pids/cpu through v2.
#
#   run-in-guest.sh --setup                  only install/refresh the cache, then exit
#   run-in-guest.sh [opts] [--] CMD [ARG]... boot, run CMD, power off
#     -C DIR   CMD's working directory, shared read-write (default: $PWD)
#     -w DIR   one more directory shared read-write (repeatable)
#     -e VAR   pass this host environment variable into the guest (repeatable)
#     -t SECS  wall-clock limit for boot + CMD + power-off (default 600)
#     -m MEM   guest memory (default 1G)      -c N   guest vCPUs (default 2)
#
# The guest sees the host's root read-only (virtme-ng, 9p), so the host's
# /usr, python and the project's .venv run unchanged inside it.  Its /tmp is
# writable: virtme-ng lays a tmpfs overlay on the host's /tmp, discarded at
# power-off (shared directories under /tmp are mounted over it).  The guest
# runs under TCG (software emulation): KVM on this machine kind is
# paravirtual and cannot boot a stock kernel.  Set PYRUNC_CG2_ACCEL=kvm where
# /dev/kvm is real hardware KVM (~10x faster).  Guest boot takes ~8 s, and
# every process start is ~40x slower than on the host.
#
# Exit status: CMD's own; 124 when the time limit hit; 125 when setup or the
# guest failed before CMD finished (the reason is on stderr, prefixed
# "[run-in-guest]").
#
# First use (as root) installs qemu-system-x86, udev, kmod (apt), virtme-ng
# (pip, pinned, in a private venv) and an unpacked Debian kernel package
# (apt-get download; never installed on the host) into $PYRUNC_CG2_CACHE
# (default /var/cache/pyrunc-cgroup2).  Later runs reuse it; the setup is
# idempotent and serialised by a lock in the cache.
#
# Knobs: PYRUNC_CG2_CACHE, PYRUNC_CG2_VIRTME_NG (virtme-ng version, default
# 1.42), PYRUNC_CG2_KERNEL (kernel package, e.g. linux-image-6.1.0-28-amd64;
# default: the newest one in the cache, else what linux-image-amd64 depends
# on), PYRUNC_CG2_ACCEL (tcg|kvm), PYRUNC_CG2_VERBOSE=1 (guest console on stderr).
set -uo pipefail

say() { printf '[run-in-guest] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 125; }

CACHE=${PYRUNC_CG2_CACHE:-/var/cache/pyrunc-cgroup2}
VNG_VERSION=${PYRUNC_CG2_VIRTME_NG:-1.42}
ACCEL=${PYRUNC_CG2_ACCEL:-tcg}
SETUP_LIMIT=900   # seconds for any one apt/pip step

# ------------------------------------------------------------------ setup ---

apt_fresh=0
apt_refresh() {
    [ "$apt_fresh" = 1 ] && return 0
    timeout "$SETUP_LIMIT" apt-get update -qq >&2 || die "apt-get update failed"
    apt_fresh=1
}

apt_ensure() {   # install the Debian packages of "$@" that are missing
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
            || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return 0
    apt_refresh
    say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive timeout "$SETUP_LIMIT" \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
}

ensure_virtme_ng() {
    VENV=$CACHE/virtme-ng-$VNG_VERSION
    VNG=$VENV/bin/vng
    [ -e "$VENV/.complete" ] && [ -x "$VNG" ] && return 0
    say "installing virtme-ng $VNG_VERSION into $VENV"
    rm -rf "$VENV"
    timeout "$SETUP_LIMIT" /usr/bin/python3 -m venv "$VENV" >&2 || die "cannot create $VENV"
    timeout "$SETUP_LIMIT" "$VENV/bin/pip" install -q --disable-pip-version-check \
        "virtme-ng==$VNG_VERSION" >&2 || { rm -rf "$VENV"; die "pip install virtme-ng==$VNG_VERSION failed"; }
    touch "$VENV/.complete"
}

ensure_kernel() {
    local pkg=${PYRUNC_CG2_KERNEL:-} tmp
    if [ -z "$pkg" ]; then   # newest kernel already unpacked, else Debian's current one
        pkg=$(find "$CACHE/kernel" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null \
              | xargs -r -n1 basename | sort -V | tail -n1)
    fi
    if [ -z "$pkg" ]; then
        apt_refresh
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
              | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
        [ -n "$pkg" ] || die "cannot tell which kernel package linux-image-amd64 depends on"
    fi
    KVER=${pkg#linux-image-}
    KDIR=$CACHE/kernel/$pkg
    KIMG=$KDIR/boot/vmlinuz-$KVER
    [ -e "$KDIR/.complete" ] && [ -f "$KIMG" ] && return 0
    apt_refresh
    say "downloading and unpacking $pkg into $KDIR (not installed on the host)"
    mkdir -p "$CACHE/kernel" || die "cannot create $CACHE/kernel"
    tmp=$(mktemp -d "$CACHE/kernel/.new.XXXXXX") || die "mktemp failed"
    # _apt cannot write to a root-only cache directory: download as root.
    (cd "$tmp" && timeout "$SETUP_LIMIT" apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) \
        || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
    dpkg-deb -x "$tmp"/*.deb "$tmp/root" || { rm -rf "$tmp"; die "dpkg-deb -x failed"; }
    # virtme-ng finds the guest's modules (9p, virtio) through modules.dep.
    depmod -a -b "$tmp/root" "$KVER" || { rm -rf "$tmp"; die "depmod failed"; }
    dpkg-deb -f "$tmp"/*.deb Version > "$tmp/root/.deb-version"
    rm -f "$tmp"/*.deb
    touch "$tmp/root/.complete"
    rm -rf "$KDIR" && mv "$tmp/root" "$KDIR" && rmdir "$tmp" || die "cannot move the kernel into $KDIR"
}

setup() {
    [ "$(id -u)" = 0 ] || die "must run as root (apt-get, and the guest command runs as root)"
    [ "$(uname -m)" = x86_64 ] || die "only x86_64 hosts are supported"
    mkdir -p "$CACHE" || die "cannot create $CACHE"
    # Parallel runs share the cache: one setup at a time.
    exec 8>"$CACHE/.lock"
    timeout "$SETUP_LIMIT" flock 8 || die "timed out waiting for $CACHE/.lock"
    # udev: virtme-ng's guest init needs udevd for /dev/virtio-ports/*, its
    # channel for CMD's output and exit status.
    apt_ensure qemu-system-x86 udev kmod python3-venv util-linux
    ensure_virtme_ng
    ensure_kernel
    flock -u 8
    exec 8>&-
}

# -------------------------------------------------------------- arguments ---

if [ "${1:-}" = --setup ]; then
    setup
    say "ready: kernel $KVER ($(cat "$KDIR/.deb-version")), virtme-ng $VNG_VERSION, cache $CACHE"
    exit 0
fi

WORKDIR=$PWD; LIMIT=600; MEM=1G; CPUS=2; RW=(); PASS=()
while getopts "C:w:e:t:m:c:h" opt; do
    case $opt in
        C) WORKDIR=$OPTARG ;; w) RW+=("$OPTARG") ;; e) PASS+=("$OPTARG") ;;
        t) LIMIT=$OPTARG ;; m) MEM=$OPTARG ;; c) CPUS=$OPTARG ;;
        h) sed -n '2,36p' "$0"; exit 0 ;;
        *) die "bad option (see -h)" ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || die "no command given (see -h)"
[[ $LIMIT =~ ^[0-9]+$ ]] || die "-t wants whole seconds"

shares=()
for d in "$WORKDIR" "${RW[@]}"; do
    d=$(cd "$d" 2>/dev/null && pwd -P) || die "no such directory: $d"
    # virtme-ng hands the shares to the kernel command line, space-separated.
    case $d in *[[:space:]]*) die "shared directory must not contain white space: $d" ;; esac
    shares+=("$d")
done
WORKDIR=${shares[0]}

setup

# -------------------------------------------------------------------- run ---

RUN=$(mktemp -d /tmp/run-in-guest.XXXXXX) || die "mktemp failed"
VNG_PID=
cleanup() {
    # Only what this script started, by pid: timeout passes the TERM on to
    # the whole process group it made for vng and qemu.
    [ -n "$VNG_PID" ] && kill "$VNG_PID" 2>/dev/null && wait "$VNG_PID" 2>/dev/null
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# The guest side: a pure v2 /sys/fs/cgroup, a writable /tmp, the
# chosen environment, then CMD.  Its exit status goes to a file in the shared
# run directory, which tells "CMD finished" apart from "the guest died".
{
    echo '#!/bin/sh'
    echo 'fail() { echo "[run-in-guest] guest: $*" >&2; exit 125; }'
    echo 'grep -q "^[^ ]* /sys/fs/cgroup cgroup2 " /proc/mounts || mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "cannot mount cgroup2"'
    echo 'if grep -q "^[^ ]* /sys/fs/cgroup/" /proc/mounts; then fail "/sys/fs/cgroup has v1 mounts below it"; fi'
    # Never mount over /tmp here: the shares below it (this run directory) would vanish.
    echo 'touch /tmp/.rw-probe 2>/dev/null && rm -f /tmp/.rw-probe || fail "the guest /tmp is not writable"'
    for v in PATH LANG LC_ALL TZ CI "${PASS[@]}"; do
        [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
    done
    printf 'export HOME=/tmp\n'
    printf 'cd %q || fail "no such directory in the guest: %q"\n' "$WORKDIR" "$WORKDIR"
    printf 'touch %q\n' "$RUN/started"
    printf '%q ' "$@"; printf '\n'
    printf 'rc=$?\necho $rc > %q\nexit $rc\n' "$RUN/rc"
} > "$RUN/guest.sh"
chmod 755 "$RUN/guest.sh"

# --force-9p: otherwise virtme-ng first tries (and waits for) a virtiofsd
# for every share before it falls back to 9p.
args=(--run "$KIMG" --force-9p --memory "$MEM" --cpus "$CPUS" --cwd "$WORKDIR" --rwdir "$RUN")
for d in "${shares[@]}"; do args+=(--rwdir "$d"); done
[ "$ACCEL" = kvm ] || args+=(--disable-kvm)
[ "${PYRUNC_CG2_VERBOSE:-0}" = 1 ] && args+=(--verbose)

say "booting $KVER ($ACCEL, $CPUS vCPU, $MEM) for: $*"
start=$(date +%s%N)
# qemu reopens /proc/self/fd/1 and 2 with O_TRUNC: a regular file there would
# be overwritten from the start, so it always gets pipes.
# vng runs its helpers (virtme-run) from PATH.
PATH=$VENV/bin:$PATH timeout --kill-after=15 "$LIMIT" "$VNG" "${args[@]}" --exec "$RUN/guest.sh" \
    </dev/null > >(cat) 2> >(cat >&2) &
VNG_PID=$!
wait "$VNG_PID"; vng_rc=$?
VNG_PID=
secs=$(( ($(date +%s%N) - start) / 1000000 ))
secs=$((secs / 1000)).$(( (secs % 1000) / 100 ))

if [ -s "$RUN/rc" ]; then
    rc=$(cat "$RUN/rc")
    say "exit $rc after ${secs}s (kernel $KVER $(cat "$KDIR/.deb-version"), virtme-ng $VNG_VERSION)"
    exit "$rc"
fi
if [ "$vng_rc" = 124 ] || [ "$vng_rc" = 137 ]; then
    say "error: time limit of ${LIMIT}s hit after ${secs}s ($([ -e "$RUN/started" ] && echo "CMD was running" || echo "CMD never started"))"
    exit 124
fi
if [ -e "$RUN/started" ]; then
    die "the guest stopped while CMD was running (vng exit $vng_rc after ${secs}s); rerun with PYRUNC_CG2_VERBOSE=1"
fi
die "the guest failed before CMD started (vng exit $vng_rc after ${secs}s); rerun with PYRUNC_CG2_VERBOSE=1"
