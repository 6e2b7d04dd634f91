"""The only module that touches libc.

Every side effect the executor has on the kernel goes through a function here,
so that a recording double (tests/doubles.py) can stand in for this module and
the plan/executor logic can be tested without root.  Functions raise OSError
with errno set and, where there is one, the path that failed.
"""
import posix
import errno

import sys as _sys

from pyrunc import pathstr
from pyrunc._libc import ffi, lib

C = lib  # constants: C.CLONE_NEWNS, C.MS_BIND, C.RESOLVE_IN_ROOT, ...

O_PATH = posix.O_PATH
O_CLOEXEC = posix.O_CLOEXEC
O_DIRECTORY = posix.O_DIRECTORY
O_NOFOLLOW = posix.O_NOFOLLOW


def _check(ret, *paths):
    if ret < 0:
        err = ffi.errno
        raise OSError(err, posix.strerror(err), *paths[:2])
    return ret


def _b(s):
    return None if s is None else pathstr.fsencode(s)


# --- namespaces -------------------------------------------------------------

def unshare(flags):
    _check(lib.unshare(flags))


def setns(fd, nstype=0):
    _check(lib.setns(fd, nstype))


# --- mounts -----------------------------------------------------------------

def mount(source, target, fstype, flags=0, data=None):
    d = ffi.NULL if not data else _b(data)
    _check(lib.mount(_b(source) or ffi.NULL, _b(target), _b(fstype) or ffi.NULL, flags, d),
           target)


def umount2(target, flags=0):
    _check(lib.umount2(_b(target), flags), target)


def pivot_root(new_root, put_old):
    _check(lib.pyrunc_pivot_root(_b(new_root), _b(put_old)), new_root)


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0):
    _check(lib.pyrunc_mount_setattr(dirfd, _b(path), flags, attr_set, attr_clr,
                                    propagation, userns_fd), path)


def open_tree(dirfd, path, flags):
    return _check(lib.pyrunc_open_tree(dirfd, _b(path), flags), path)


def move_mount(from_dirfd, from_path, to_dirfd, to_path, flags):
    _check(lib.pyrunc_move_mount(from_dirfd, _b(from_path), to_dirfd, _b(to_path), flags),
           to_path)


def chroot(path):
    _check(lib.chroot(_b(path)), path)


# --- paths and fds ----------------------------------------------------------

def openat2(dirfd, path, flags, mode=0, resolve=0):
    """openat2(2); always O_CLOEXEC so nothing we open reaches the container."""
    return _check(lib.pyrunc_openat2(dirfd, _b(path), flags | O_CLOEXEC, mode, resolve), path)


def open(path, flags, mode=0o777, dir_fd=None):
    return posix.open(path, flags | O_CLOEXEC, mode, dir_fd=dir_fd)


def close(fd):
    posix.close(fd)


def close_range_cloexec(first):
    """Mark every fd >= first close-on-exec (CVE-2024-21626: no host fd may survive exec)."""
    _check(lib.pyrunc_close_range(first, 0xFFFFFFFF, lib.CLOSE_RANGE_CLOEXEC))


def mkdirat(dirfd, name, mode=0o755):
    posix.mkdir(name, mode, dir_fd=dirfd)


def mknodat(dirfd, name, mode, dev):
    _check(lib.mknodat(dirfd, _b(name), mode, dev), name)


def symlinkat(target, dirfd, name):
    posix.symlink(target, name, dir_fd=dirfd)


def fstat(fd):
    return posix.fstat(fd)


def fchown(fd, uid, gid):
    posix.fchown(fd, uid, gid)


def fchmod(fd, mode):
    posix.fchmod(fd, mode)


def fchdir(fd):
    posix.fchdir(fd)


def chdir(path):
    posix.chdir(path)


def write(fd, data):
    return posix.write(fd, data)


def dup2(fd, fd2, inheritable=True):
    return posix.dup2(fd, fd2, inheritable)


# rootfs helpers: O_PATH fds cannot be fchown'd/fchmod'd, so those go through
# the fd's /proc/self/fd/N path (chown/chmod); readlinkat(fd, "") reads an
# O_PATH|O_NOFOLLOW symlink fd.

def readlinkat(dirfd, path):
    return posix.readlink(path, dir_fd=dirfd)


def fstatvfs(fd):
    return posix.fstatvfs(fd)


def unlinkat(dirfd, name, is_dir=False):
    if is_dir:
        posix.rmdir(name, dir_fd=dirfd)
    else:
        posix.unlink(name, dir_fd=dirfd)


def rename_exchange(a, b):
    """Swap the names a and b atomically (renameat2 RENAME_EXCHANGE); both must exist."""
    _check(lib.pyrunc_rename_exchange(_b(a), _b(b)), a, b)


def chown(path, uid, gid):
    posix.chown(path, uid, gid)


def chmod(path, mode):
    posix.chmod(path, mode)


def read_file(path, dir_fd=None):
    """Whole contents of a small (proc) file, as bytes."""
    fd = posix.open(path, posix.O_RDONLY | O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks = []
        while chunk := posix.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        posix.close(fd)


def copy_tree(src_dirfd, dst_dirfd):
    """Copy a directory's contents between two open directory fds (tmpcopyup)."""
    from pyrunc._fscopy import copy_tree as _copy
    _copy(src_dirfd, dst_dirfd)


# --- process attributes -----------------------------------------------------

def sethostname(name):
    b = _b(name)
    _check(lib.sethostname(b, len(b)))


def setdomainname(name):
    b = _b(name)
    _check(lib.setdomainname(b, len(b)))


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(lib.prctl(option, arg2, arg3, arg4, arg5))


def setgroups(gids):
    arr = ffi.new("unsigned int[]", list(gids)) if gids else ffi.NULL
    _check(lib.setgroups(len(gids), arr))


def setresuid(r, e, s):
    _check(lib.pyrunc_setresuid(r, e, s))


def setresgid(r, e, s):
    _check(lib.pyrunc_setresgid(r, e, s))


def capset(effective, permitted, inheritable):
    """Set the three per-thread sets exactly, each an int bitmask of cap numbers."""
    m = 0xFFFFFFFF
    _check(lib.pyrunc_capset(effective & m, effective >> 32, permitted & m, permitted >> 32,
                             inheritable & m, inheritable >> 32))


def join_session_keyring(name):
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING): the container must not share the caller's keys."""
    b = ffi.new("char[]", _b(name))
    serial = _check(lib.pyrunc_keyctl(1, int(ffi.cast("unsigned long", b)), 0, 0, 0))
    return serial


def keyring_setperm(serial, perm):
    _check(lib.pyrunc_keyctl(5, serial, perm, 0, 0))


def umask(mask):
    return posix.umask(mask)


def setrlimit(resource, soft, hard):
    """resource: C.RLIMIT_*; soft, hard: as in the spec (2^64-1: unlimited)."""
    _check(lib.pyrunc_setrlimit(resource, soft, hard))


def setsid():
    posix.setsid()


# --- process setup: user, caps, cwd, fds, network (executor/process.py) ----

def stat(path):
    """stat(2), following symlinks (how Go's exec.LookPath looks at a candidate)."""
    return posix.stat(path)


def getcwd():
    return posix.getcwd()


def set_inheritable(fd, inheritable):
    posix.set_inheritable(fd, inheritable)


def fstatfs_magic(fd):
    """f_type of the filesystem holding fd (C.PROC_SUPER_MAGIC, ...)."""
    return _check(lib.pyrunc_fstatfs_magic(fd))


def link_up(name):
    """Set IFF_UP on a network interface (loopback in a new netns)."""
    _check(lib.pyrunc_link_up(_b(name)), name)


# --- scheduling, I/O priority, personality, NUMA (executor/extras.py) ---------

def sched_setattr(pid, policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    _check(lib.pyrunc_sched_setattr(pid, policy, flags, nice, priority, runtime, deadline,
                                    period))


def sched_setaffinity(pid, cpus):
    posix.sched_setaffinity(pid, cpus)


def ioprio_set(which, who, ioprio):
    _check(lib.pyrunc_ioprio_set(which, who, ioprio))


def personality(persona):
    """Set the execution domain; returns the previous one (0xffffffff only reads it)."""
    return _check(lib.personality(persona))


def set_mempolicy(mode, nodes=()):
    """set_mempolicy(2); mode carries the MPOL_F_* flags, nodes are node numbers."""
    nodes = sorted(set(nodes))
    if not nodes:
        _check(lib.pyrunc_set_mempolicy(mode, ffi.NULL, 0))
        return
    bits = 8 * ffi.sizeof("unsigned long")
    mask = ffi.new("unsigned long[]", nodes[-1] // bits + 1)
    for n in nodes:
        mask[n // bits] |= 1 << (n % bits)
    # the kernel reads maxnode - 1 bits (a historical off-by-one it keeps)
    _check(lib.pyrunc_set_mempolicy(mode, mask, len(mask) * bits + 1))


# Capabilities: the raw prctl through cffi, for every cap number the kernel
# knows (python-prctl knows only its build headers' caps, and importing it cost
# each create ~1 ms in two processes); exact E/P/I masks go through capset above.

PR_GET_PDEATHSIG = 2   # <linux/prctl.h>, the same on every architecture


def capbset_drop(cap):
    """Drop one capability (by number) from the bounding set."""
    prctl(C.PR_CAPBSET_DROP, cap)


def get_pdeathsig():
    """The parent-death signal of this process (0: none); the kernel writes it to an int."""
    out = ffi.new("int *")
    prctl(PR_GET_PDEATHSIG, int(ffi.cast("uintptr_t", out)))
    return out[0]


# --- console (executor/console.py) ------------------------------------------

def pty_unlock(fd):
    _check(lib.pyrunc_pty_unlock(fd))


def pty_number(fd):
    """N of the slave /dev/pts/N of a pty master."""
    return _check(lib.pyrunc_pty_number(fd))


def pty_peer(fd, flags):
    """Open the slave of a pty master (TIOCGPTPEER); returns the new fd."""
    return _check(lib.pyrunc_pty_peer(fd, flags | O_CLOEXEC))


def set_winsize(fd, rows, cols):
    _check(lib.pyrunc_set_winsize(fd, rows, cols))


def setctty(fd):
    _check(lib.pyrunc_setctty(fd))


def send_fds(sock_fd, payload, fds):
    """sendmsg one SCM_RIGHTS message with payload on a connected unix socket fd."""
    import _socket   # built in (no file to read after pivot_root); not on create's path
    s = _socket.socket(fileno=sock_fd)
    try:
        s.sendmsg([payload], _rights(fds))
    finally:
        s.detach()


def _rights(fds):
    """The SCM_RIGHTS ancillary data for fds: what socket.send_fds builds, as C ints
    (without `array`, whose import brings collections along)."""
    import _socket
    data = b"".join(fd.to_bytes(4, _sys.byteorder, signed=True) for fd in fds)
    return [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, data)]


def seqpacket_pair():
    """Two connected close-on-exec AF_UNIX SOCK_SEQPACKET fds (without the
    _socket module, ~0.1 ms a create)."""
    fds = ffi.new("int[2]")
    _check(lib.pyrunc_seqpacket_pair(fds))
    return fds[0], fds[1]


def fork():
    return posix.fork()


def clone_fork(flags, cgroup_fd=-1):
    """posix.fork() with clone flags (CLONE_NEW*: the child is born in new
    namespaces), born in the cgroup2 directory cgroup_fd unless it is -1."""
    return _check(lib.pyrunc_clone_fork(flags, cgroup_fd))


def default_signal(sig):
    """The default disposition for sig (the kernel's; Python's table untouched)."""
    _check(lib.pyrunc_default_signal(sig))


_vm_child = None        # what the child of clone_vm runs
_vm_attached = False    # _run_vm_child given to the C side (first clone_vm)


def clone_vm(flags, cgroup_fd, child):
    """clone_fork's flags and cgroup, but the child runs child() in our
    memory while we sleep (CLONE_VM | CLONE_VFORK, pyrunc/clone_vm.c):
    returns the pid once it has exec'd or exited.  child() must do one or
    the other, and must not wait for us.  OSError EBUSY: we have threads;
    ENOSYS: not on this architecture."""
    global _vm_child, _vm_attached
    if not _vm_attached:
        ffi.def_extern(name="pyrunc_vm_child_main")(_run_vm_child)
        _vm_attached = True
    _vm_child = child
    try:
        return _check(lib.pyrunc_clone_vm(flags, cgroup_fd))
    finally:
        _vm_child = None


def _run_vm_child():
    try:
        _vm_child()
    finally:
        posix._exit(127)   # never back into C: child() execs or exits


def execve(path, args, env):
    posix.execve(path, args, env)


def fexecve(fd, args, env):
    posix.execve(fd, args, env)


MFD_EXEC = 0x10   # linux >= 6.3; where vm.memfd_noexec is 1, memfds are not executable without it


def sealed_memfd(name, data, executable=False):
    """A close-on-exec memfd holding data, sealed: nobody can write, grow,
    shrink or unseal it any more, whatever their privileges."""
    import fcntl   # a small C module, needed by create only
    flags = posix.MFD_CLOEXEC | posix.MFD_ALLOW_SEALING
    try:
        fd = posix.memfd_create(name, flags | (MFD_EXEC if executable else 0))
    except OSError as e:
        if not executable or e.errno != errno.EINVAL:
            raise
        fd = posix.memfd_create(name, flags)   # a kernel before 6.3: no such flag, all executable
    try:
        view = memoryview(data)
        while view:
            view = view[posix.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                    | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except BaseException:
        posix.close(fd)
        raise
    return fd


# --- seccomp (executor/seccomp.py) --------------------------------------------
# libseccomp builds the filter and exports its BPF; seccomp(2) loads it, so the
# filter flags are ours to choose.  A filter handle is libseccomp's context.

def seccomp_syscall_number(name):
    """The native number (or libseccomp's negative pseudo number) of a syscall
    name, or None when this libseccomp does not know it."""
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    return None if nr == -1 else nr   # -1 is __NR_SCMP_ERROR


def seccomp_native_arch():
    return lib.seccomp_arch_native()


def _scmp(ret):
    # libseccomp returns -errno instead of setting errno
    if ret < 0:
        raise OSError(-ret, posix.strerror(-ret))
    return ret


def seccomp_new(default_action):
    """A new libseccomp filter context; free it with seccomp_release."""
    ctx = lib.seccomp_init(default_action)
    if ctx == ffi.NULL:
        raise OSError(errno.EINVAL, "seccomp_init failed")
    return ctx


def seccomp_release(ctx):
    lib.seccomp_release(ctx)


def seccomp_add_arch(ctx, token):
    ret = lib.seccomp_arch_add(ctx, token)
    if ret != -errno.EEXIST:   # the native arch is always there
        _scmp(ret)


def seccomp_add_rule(ctx, action, nr, conds=()):
    """conds: ((arg, op, datum_a, datum_b), ...), all of which must hold."""
    flat = [v for c in conds for v in c]
    arr = ffi.new("uint64_t[]", flat) if flat else ffi.NULL
    _scmp(lib.pyrunc_scmp_rule_add(ctx, action, nr, len(conds), arr))


def seccomp_export(ctx):
    """The filter's BPF program as bytes (struct sock_filter[])."""
    fd = posix.memfd_create("seccomp-bpf", posix.MFD_CLOEXEC)
    try:
        _scmp(lib.seccomp_export_bpf(ctx, fd))
        size = posix.lseek(fd, 0, 1)
        return posix.pread(fd, size, 0)
    finally:
        posix.close(fd)


def seccomp_load(bpf, flags):
    """Install a BPF program with seccomp(SECCOMP_SET_MODE_FILTER); returns the
    listener fd when flags carry SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0."""
    buf = ffi.from_buffer(bpf)
    return _check(lib.pyrunc_seccomp_load(flags, buf, len(bpf) // 8))


def seccomp_flags_supported(flags):
    """Whether the kernel accepts these SECCOMP_FILTER_FLAG_* bits (nothing is loaded)."""
    lib.pyrunc_seccomp_probe_flags(flags)
    return ffi.errno == errno.EFAULT


def unix_connect(path):
    """A SOCK_STREAM unix socket fd connected to path (close-on-exec)."""
    import _socket   # built in (no file to read after pivot_root); not on create's path
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)   # close-on-exec
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise OSError(e.errno, posix.strerror(e.errno), path) from None
    return s.detach()


def send_all_with_fds(sock_fd, payload, fds):
    """sendmsg payload with fds in SCM_RIGHTS on the first chunk, looping (with
    sendmsg only) until all is sent; a peer gone is EPIPE, never SIGPIPE."""
    import _socket   # built in (no file to read after pivot_root); not on create's path
    s = _socket.socket(fileno=sock_fd)
    try:
        sent = s.sendmsg([payload], _rights(fds), _socket.MSG_NOSIGNAL)
        while sent < len(payload):
            sent += s.sendmsg([payload[sent:]], [], _socket.MSG_NOSIGNAL)
    finally:
        s.detach()


# --- cgroups (executor/cgroups.py, executor/bpf.py) --------------------------

def mkdir(path, mode=0o755):
    posix.mkdir(path, mode)


def rmdir(path):
    posix.rmdir(path)


def write_file(path, data):
    """Write data to an existing file in ONE write(2): cgroupfs takes each write
    as one value, so a value must never be split."""
    fd = posix.open(path, posix.O_WRONLY | O_CLOEXEC)
    try:
        posix.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        posix.close(fd)


def bpf_prog_load(prog_type, insns, license="Apache-2.0"):
    """Load a BPF program (insns: bytes of struct bpf_insn); returns its fd.

    On failure the verifier's log, when it wrote one, is the OSError's text.
    """
    count = len(insns) // 8
    buf = ffi.new("char[]", insns)
    lic = ffi.new("char[]", license.encode())
    log = ffi.new("char[]", 65536)
    fd = lib.pyrunc_bpf_prog_load(prog_type, buf, count, lic, log, 65536)
    if fd < 0:
        err = ffi.errno
        text = ffi.string(log).decode(errors="replace").strip()
        raise OSError(err, posix.strerror(err) + (f" (verifier: {text})" if text else ""))
    posix.set_inheritable(fd, False)
    return fd


def bpf_prog_attach(prog_fd, target_fd, attach_type, flags=0):
    _check(lib.pyrunc_bpf_prog_attach(prog_fd, target_fd, attach_type, flags))


def bpf_prog_detach(prog_fd, target_fd, attach_type):
    _check(lib.pyrunc_bpf_prog_detach(prog_fd, target_fd, attach_type))


def bpf_prog_query(target_fd, attach_type):
    """Ids of the programs attached to target_fd for attach_type."""
    room = 64
    while True:
        ids = ffi.new("unsigned int[]", room)
        count = ffi.new("unsigned int *", room)
        if lib.pyrunc_bpf_prog_query(target_fd, attach_type, ids, count) == 0:
            return [ids[i] for i in range(count[0])]
        err = ffi.errno
        if err != errno.ENOSPC or count[0] <= room:
            raise OSError(err, posix.strerror(err))
        room = count[0]


def bpf_prog_get_fd_by_id(prog_id):
    fd = _check(lib.pyrunc_bpf_prog_get_fd_by_id(prog_id))
    posix.set_inheritable(fd, False)
    return fd
