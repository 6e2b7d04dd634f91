#!/bin/sh
# probe.sh EXIT_CODE [MASKED_PATHS] [READONLY_PATHS]
#
# Runs as the container's process (busybox sh) and prints ONE JSON object
# describing what the process sees, then exits with EXIT_CODE.
# MASKED_PATHS and READONLY_PATHS are comma-separated paths to check.
#
# Everything is read from /proc/$P (the shell the runtime exec'd), never
# /proc/self: a child's credentials differ (execve recomputes capabilities for
# root), and the shell is exactly what the runtime set up.
# Output is normalised so two runtimes can be compared field by field:
# no mount ids, no peer-group numbers, no inode numbers.

P=$$

# -- 1. fds, before this script opens anything.  `[ -L ]` is a builtin stat,
# so probing opens no fd of its own.  The shell's own script fd (busybox ash
# keeps it at 10 or above) is recognised by its target and left out.
fds=""
i=0
while [ $i -lt 256 ]; do
    [ -L /proc/$P/fd/$i ] && fds="$fds $i"
    i=$((i + 1))
done
self_path=$(readlink -f "$0" 2>/dev/null)

AWK_Q='function q(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s); return "\"" s "\"" }'

js() {  # a JSON string
    printf '%s' "$1" | awk "$AWK_Q"' { if (NR > 1) printf "\\n"; printf "%s", substr(q($0), 2, length(q($0)) - 2) } BEGIN { printf "\"" } END { printf "\"" }'
}

# mountinfo of this process: one object per mount, sorted, without ids.
mounts_json() {
    awk "$AWK_Q"'
    {
        prop = ""
        for (i = 7; i <= NF && $i != "-"; i++) {   # optional fields: shared:N, master:N ...
            tag = $i; sub(/:.*/, "", tag)
            prop = prop (prop == "" ? "" : ",") tag
        }
        fstype = $(i + 1); source = $(i + 2); sup = $(i + 3)
        printf "%s\t{\"path\":%s,\"type\":%s,\"source\":%s,\"opts\":%s,\"super\":%s,\"prop\":%s}\n", \
            $5, q($5), q(fstype), q(source), q($6), q(sup), q(prop)
    }' /proc/$P/mountinfo | sort | cut -f2- | awk '{ printf "%s%s", (NR > 1 ? "," : ""), $0 }'
}

# Per-mount options of the mount that holds PATH (the last, topmost match wins).
mount_opts_of() {
    awk -v p="$1" '
    { mp = $5; if (mp == "/" || p == mp || index(p, mp "/") == 1) { if (length(mp) >= best) { best = length(mp); o = $6 } } }
    END { print o }' /proc/$P/mountinfo
}

status_json() {
    awk "$AWK_Q"'
    function arr(s,   n, a, i, out) { n = split(s, a, /[ \t]+/); out = ""
        for (i = 1; i <= n; i++) if (a[i] != "") out = out (out == "" ? "" : ",") a[i]
        return "[" out "]" }
    /^Uid:/ { sub(/^Uid:[ \t]*/, ""); uid = arr($0) }
    /^Gid:/ { sub(/^Gid:[ \t]*/, ""); gid = arr($0) }
    /^Groups:/ { sub(/^Groups:[ \t]*/, ""); groups = arr($0) }
    /^Cap(Inh|Prm|Eff|Bnd|Amb):/ { k = $1; sub(/:$/, "", k); caps = caps (caps == "" ? "" : ",") q(k) ":" q($2) }
    /^NoNewPrivs:/ { nnp = $2 }
    /^Seccomp:/ { sec = $2 }
    /^Seccomp_filters:/ { secf = $2 }
    /^Umask:/ { umask = $2 }
    END {
        printf "\"uid\":%s,\"gid\":%s,\"groups\":%s,\"caps\":{%s},", uid, gid, groups, caps
        printf "\"no_new_privs\":%s,\"seccomp\":%s,", (nnp == "" ? "null" : nnp), (sec == "" ? "null" : sec)
        printf "\"seccomp_filters\":%s,\"umask\":%s", (secf == "" ? "null" : secf), q(umask)
    }' /proc/$P/status
}

# /proc/PID/limits → {"RLIMIT_NOFILE": ["1024", "1024"], ...}
limits_json() {
    awk '
    BEGIN {
        n["Max cpu time"] = "CPU"; n["Max file size"] = "FSIZE"; n["Max data size"] = "DATA"
        n["Max stack size"] = "STACK"; n["Max core file size"] = "CORE"
        n["Max resident set"] = "RSS"; n["Max processes"] = "NPROC"
        n["Max open files"] = "NOFILE"; n["Max locked memory"] = "MEMLOCK"
        n["Max address space"] = "AS"; n["Max file locks"] = "LOCKS"
        n["Max pending signals"] = "SIGPENDING"; n["Max msgqueue size"] = "MSGQUEUE"
        n["Max nice priority"] = "NICE"; n["Max realtime priority"] = "RTPRIO"
        n["Max realtime timeout"] = "RTTIME"
    }
    NR > 1 {
        name = substr($0, 1, 26); sub(/ +$/, "", name)
        split(substr($0, 27), v, /[ \t]+/)
        key = (name in n) ? "RLIMIT_" n[name] : name
        printf "%s\"%s\":[\"%s\",\"%s\"]", (NR > 2 ? "," : ""), key, v[1], v[2]
    }' /proc/$P/limits
}

env_json() {
    tr '\0' '\n' < /proc/$P/environ | sort | awk "$AWK_Q"' { printf "%s%s", (NR > 1 ? "," : ""), q($0) }'
}

lines_json() {  # a file's lines as a JSON array of strings
    awk "$AWK_Q"' { printf "%s%s", (NR > 1 ? "," : ""), q($0) }' "$1" 2>/dev/null
}

masked_state() {
    p=$1
    if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo missing; return; fi
    if [ -c "$p" ]; then
        dev=$(stat -L -c '%t:%T' "$p")
        [ "$dev" = "1:3" ] && echo devnull || echo "chardev:$dev"
        return
    fi
    if [ -d "$p" ]; then
        [ -z "$(ls -A "$p" 2>/dev/null)" ] && echo empty_dir || echo visible_dir
        return
    fi
    echo visible
}

fd_target() {  # normalised target of one of the shell's fds
    t=$(readlink /proc/$P/fd/$1 2>/dev/null)
    case "$t" in
        pipe:*) echo pipe ;;
        socket:*) echo socket ;;
        anon_inode:*) echo "$t" ;;
        *) echo "$t" ;;
    esac
}

# -- 2. the report
printf '{'
printf '"pid":%s,' "$P"
status_json
printf ',"rlimits":{'; limits_json; printf '}'
printf ',"cwd":'; js "$(pwd -P)"
printf ',"env":['; env_json; printf ']'
printf ',"hostname":'; js "$(cat /proc/sys/kernel/hostname)"
printf ',"domainname":'; js "$(cat /proc/sys/kernel/domainname)"
printf ',"cgroup":['; lines_json /proc/$P/cgroup; printf ']'
printf ',"mounts":['; mounts_json; printf ']'

printf ',"masked":{'
sep=""
IFS_SAVE=$IFS; IFS=,
for p in $2; do
    IFS=$IFS_SAVE
    [ -n "$p" ] || continue
    printf '%s%s:"%s"' "$sep" "$(js "$p")" "$(masked_state "$p")"; sep=,
    IFS=,
done
IFS=$IFS_SAVE
printf '}'

printf ',"readonly":{'
sep=""
IFS=,
for p in $3; do
    IFS=$IFS_SAVE
    [ -n "$p" ] || continue
    if [ ! -e "$p" ]; then
        printf '%s%s:"missing"' "$sep" "$(js "$p")"
    else
        ro=false
        case ",$(mount_opts_of "$p")," in *,ro,*) ro=true ;; esac
        # touch -c never creates; on a read-only mount it fails with EROFS.
        tw=false
        touch -c "$p" 2>/dev/null && tw=true
        printf '%s%s:{"ro_mount":%s,"touch_ok":%s}' "$sep" "$(js "$p")" "$ro" "$tw"
    fi
    sep=,
    IFS=,
done
IFS=$IFS_SAVE
printf '}'

printf ',"fds":{'
sep=""
for n in $fds; do
    t=$(fd_target "$n")
    if [ -n "$self_path" ] && [ "$t" = "$self_path" ]; then continue; fi
    printf '%s"%s":%s' "$sep" "$n" "$(js "$t")"; sep=,
done
printf '}'

printf ',"exit":%s}\n' "${1:-0}"
exit "${1:-0}"
