"""cffi build script for pyrunc._libc (out-of-line API mode).

Compiled once at install time so that importing the syscall layer costs no
cdef parsing on every (short-lived) pyrunc invocation.  Only pyrunc/syscalls.py
imports the result.
"""
import os

from cffi import FFI


def _read(name):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name)) as f:
        return f.read()


ffibuilder = FFI()

ffibuilder.cdef("""
    #define CLONE_NEWNS ...
    #define CLONE_NEWUTS ...
    #define CLONE_NEWIPC ...
    #define CLONE_NEWUSER ...
    #define CLONE_NEWPID ...
    #define CLONE_NEWNET ...
    #define CLONE_NEWCGROUP ...
    #define CLONE_NEWTIME ...

    #define MS_RDONLY ...
    #define MS_NOSUID ...
    #define MS_NODEV ...
    #define MS_NOEXEC ...
    #define MS_SYNCHRONOUS ...
    #define MS_REMOUNT ...
    #define MS_MANDLOCK ...
    #define MS_DIRSYNC ...
    #define MS_NOSYMFOLLOW ...
    #define MS_NOATIME ...
    #define MS_NODIRATIME ...
    #define MS_BIND ...
    #define MS_MOVE ...
    #define MS_REC ...
    #define MS_SILENT ...
    #define MS_UNBINDABLE ...
    #define MS_PRIVATE ...
    #define MS_SLAVE ...
    #define MS_SHARED ...
    #define MS_RELATIME ...
    #define MS_STRICTATIME ...
    #define MS_LAZYTIME ...
    #define MNT_DETACH ...

    #define RESOLVE_NO_XDEV ...
    #define RESOLVE_NO_MAGICLINKS ...
    #define RESOLVE_NO_SYMLINKS ...
    #define RESOLVE_BENEATH ...
    #define RESOLVE_IN_ROOT ...

    #define MOUNT_ATTR_RDONLY ...
    #define MOUNT_ATTR_NOSUID ...
    #define MOUNT_ATTR_NODEV ...
    #define MOUNT_ATTR_NOEXEC ...
    #define MOUNT_ATTR__ATIME ...
    #define MOUNT_ATTR_RELATIME ...
    #define MOUNT_ATTR_NOATIME ...
    #define MOUNT_ATTR_STRICTATIME ...
    #define MOUNT_ATTR_NODIRATIME ...
    #define MOUNT_ATTR_IDMAP ...
    #define MOUNT_ATTR_NOSYMFOLLOW ...
    #define AT_RECURSIVE ...
    #define AT_EMPTY_PATH ...
    #define AT_SYMLINK_NOFOLLOW ...
    #define OPEN_TREE_CLONE ...
    #define OPEN_TREE_CLOEXEC ...
    #define MOVE_MOUNT_F_EMPTY_PATH ...
    #define MOVE_MOUNT_T_EMPTY_PATH ...

    #define CLOSE_RANGE_CLOEXEC ...

    #define PR_SET_DUMPABLE ...
    #define PR_SET_NO_NEW_PRIVS ...
    #define PR_SET_CHILD_SUBREAPER ...
    #define PR_SET_PDEATHSIG ...
    #define PR_SET_KEEPCAPS ...
    #define PR_SET_NAME ...
    #define PR_CAP_AMBIENT ...
    #define PR_CAP_AMBIENT_RAISE ...
    #define PR_CAP_AMBIENT_CLEAR_ALL ...
    #define PR_CAPBSET_DROP ...
    #define PR_CAPBSET_READ ...

    int mount(const char *source, const char *target, const char *fstype,
              unsigned long flags, const void *data);
    int umount2(const char *target, int flags);
    int unshare(int flags);
    int setns(int fd, int nstype);
    int sethostname(const char *name, size_t len);
    int setdomainname(const char *name, size_t len);
    int mknodat(int dirfd, const char *pathname, unsigned int mode, unsigned long dev);
    int prctl(int option, unsigned long arg2, unsigned long arg3,
              unsigned long arg4, unsigned long arg5);
    int chroot(const char *path);
    int setgroups(size_t size, const unsigned int *list);

    /* thin wrappers for syscalls glibc 2.36 lacks; defined below */
    int pyrunc_pivot_root(const char *new_root, const char *put_old);
    int pyrunc_openat2(int dirfd, const char *path, unsigned long long flags,
                       unsigned long long mode, unsigned long long resolve);
    int pyrunc_close_range(unsigned int first, unsigned int last, unsigned int flags);
    int pyrunc_mount_setattr(int dirfd, const char *path, unsigned int flags,
                             unsigned long long attr_set, unsigned long long attr_clr,
                             unsigned long long propagation, unsigned long long userns_fd);
    int pyrunc_open_tree(int dirfd, const char *path, unsigned int flags);
    int pyrunc_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                          const char *to_path, unsigned int flags);
    int pyrunc_capset(unsigned int eff0, unsigned int eff1, unsigned int prm0,
                      unsigned int prm1, unsigned int inh0, unsigned int inh1);
    int pyrunc_setresuid(unsigned int r, unsigned int e, unsigned int s);
    int pyrunc_setresgid(unsigned int r, unsigned int e, unsigned int s);
    long pyrunc_keyctl(int op, unsigned long a2, unsigned long a3,
                       unsigned long a4, unsigned long a5);
    int pyrunc_rename_exchange(const char *a, const char *b);
    int pyrunc_seqpacket_pair(int fds[2]);
    long pyrunc_clone_fork(unsigned long long flags, int cgroup_fd);
    long pyrunc_clone_vm(unsigned long long flags, int cgroup_fd);
    extern "Python" void pyrunc_vm_child_main(void);
    int pyrunc_default_signal(int sig);

    /* process attributes and console (executor/process.py, executor/console.py) */
    #define RLIMIT_CPU ...
    #define RLIMIT_FSIZE ...
    #define RLIMIT_DATA ...
    #define RLIMIT_STACK ...
    #define RLIMIT_CORE ...
    #define RLIMIT_RSS ...
    #define RLIMIT_NPROC ...
    #define RLIMIT_NOFILE ...
    #define RLIMIT_MEMLOCK ...
    #define RLIMIT_AS ...
    #define RLIMIT_LOCKS ...
    #define RLIMIT_SIGPENDING ...
    #define RLIMIT_MSGQUEUE ...
    #define RLIMIT_NICE ...
    #define RLIMIT_RTPRIO ...
    #define RLIMIT_RTTIME ...
    int pyrunc_setrlimit(int resource, unsigned long long soft, unsigned long long hard);
    #define PROC_SUPER_MAGIC ...
    #define DEVPTS_SUPER_MAGIC ...
    long pyrunc_fstatfs_magic(int fd);
    int pyrunc_link_up(const char *name);
    int pyrunc_pty_unlock(int fd);
    int pyrunc_pty_number(int fd);
    int pyrunc_pty_peer(int fd, int flags);
    int pyrunc_set_winsize(int fd, unsigned short rows, unsigned short cols);
    int pyrunc_setctty(int fd);

    /* scheduling, I/O priority, personality, NUMA policy (executor/extras.py) */
    int pyrunc_sched_setattr(int pid, unsigned int policy, unsigned long long flags, int nice,
                             unsigned int priority, unsigned long long runtime,
                             unsigned long long deadline, unsigned long long period);
    int pyrunc_ioprio_set(int which, int who, int ioprio);
    int personality(unsigned long persona);
    long pyrunc_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode);

    /* cgroup v2 device filter (executor/bpf.py) */
    #define BPF_PROG_TYPE_CGROUP_DEVICE ...
    #define BPF_CGROUP_DEVICE ...
    #define BPF_F_ALLOW_MULTI ...
    int pyrunc_bpf_prog_load(unsigned int prog_type, const void *insns, unsigned int insn_cnt,
                             const char *license, char *log_buf, unsigned int log_size);
    int pyrunc_bpf_prog_attach(int prog_fd, int target_fd, unsigned int attach_type,
                               unsigned int flags);
    int pyrunc_bpf_prog_detach(int prog_fd, int target_fd, unsigned int attach_type);
    int pyrunc_bpf_prog_query(int target_fd, unsigned int attach_type, unsigned int *ids,
                              unsigned int *count);
    int pyrunc_bpf_prog_get_fd_by_id(unsigned int id);

    /* seccomp through libseccomp (executor/seccomp.py): libseccomp builds and
       exports the BPF program, we load it with seccomp(2) ourselves so that
       every filter flag (WAIT_KILLABLE_RECV too) is ours to pass */
    typedef void *scmp_filter_ctx;
    #define SCMP_ACT_KILL_PROCESS ...
    #define SCMP_ACT_KILL_THREAD ...
    #define SCMP_ACT_TRAP ...
    #define SCMP_ACT_NOTIFY ...
    #define SCMP_ACT_LOG ...
    #define SCMP_ACT_ALLOW ...
    #define PYRUNC_SCMP_ACT_ERRNO ...
    #define PYRUNC_SCMP_ACT_TRACE ...
    #define SCMP_ARCH_X86 ...
    #define SCMP_ARCH_X86_64 ...
    #define SCMP_ARCH_X32 ...
    #define SCMP_ARCH_ARM ...
    #define SCMP_ARCH_AARCH64 ...
    #define SCMP_ARCH_MIPS ...
    #define SCMP_ARCH_MIPS64 ...
    #define SCMP_ARCH_MIPS64N32 ...
    #define SCMP_ARCH_MIPSEL ...
    #define SCMP_ARCH_MIPSEL64 ...
    #define SCMP_ARCH_MIPSEL64N32 ...
    #define SCMP_ARCH_PPC ...
    #define SCMP_ARCH_PPC64 ...
    #define SCMP_ARCH_PPC64LE ...
    #define SCMP_ARCH_S390 ...
    #define SCMP_ARCH_S390X ...
    #define SCMP_ARCH_PARISC ...
    #define SCMP_ARCH_PARISC64 ...
    #define SCMP_ARCH_RISCV64 ...
    #define PYRUNC_SCMP_CMP_NE ...
    #define PYRUNC_SCMP_CMP_LT ...
    #define PYRUNC_SCMP_CMP_LE ...
    #define PYRUNC_SCMP_CMP_EQ ...
    #define PYRUNC_SCMP_CMP_GE ...
    #define PYRUNC_SCMP_CMP_GT ...
    #define PYRUNC_SCMP_CMP_MASKED_EQ ...
    #define SECCOMP_FILTER_FLAG_TSYNC ...
    #define SECCOMP_FILTER_FLAG_LOG ...
    #define SECCOMP_FILTER_FLAG_SPEC_ALLOW ...
    #define SECCOMP_FILTER_FLAG_NEW_LISTENER ...
    #define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ...
    scmp_filter_ctx seccomp_init(uint32_t def_action);
    void seccomp_release(scmp_filter_ctx ctx);
    int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
    uint32_t seccomp_arch_native(void);
    int seccomp_syscall_resolve_name(const char *name);
    int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
    int pyrunc_scmp_rule_add(scmp_filter_ctx ctx, uint32_t action, int syscall,
                             unsigned int count, const uint64_t *conds);
    int pyrunc_seccomp_load(unsigned int flags, const void *insns, unsigned int count);
    int pyrunc_seccomp_probe_flags(unsigned int flags);
""")

ffibuilder.set_source("pyrunc._libc", r"""
    #include <errno.h>
    #include <grp.h>
    #include <signal.h>
    #include <string.h>
    #include <sched.h>
    #include <stdint.h>
    #include <sys/mount.h>
    #include <sys/prctl.h>
    #include <sys/stat.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    #include <fcntl.h>
    #include <linux/openat2.h>
    #include <linux/capability.h>
    #include <linux/mount.h>
    #include <linux/close_range.h>

    #ifndef CLONE_NEWTIME
    #define CLONE_NEWTIME 0x00000080
    #endif
    #ifndef MS_NOSYMFOLLOW
    #define MS_NOSYMFOLLOW 256
    #endif
    #ifndef MOUNT_ATTR_NOSYMFOLLOW
    #define MOUNT_ATTR_NOSYMFOLLOW 0x00200000
    #endif

    int pyrunc_pivot_root(const char *new_root, const char *put_old) {
        return syscall(SYS_pivot_root, new_root, put_old);
    }
    int pyrunc_openat2(int dirfd, const char *path, unsigned long long flags,
                       unsigned long long mode, unsigned long long resolve) {
        struct open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
        return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    }
    int pyrunc_close_range(unsigned int first, unsigned int last, unsigned int flags) {
        return syscall(SYS_close_range, first, last, flags);
    }
    int pyrunc_mount_setattr(int dirfd, const char *path, unsigned int flags,
                             unsigned long long attr_set, unsigned long long attr_clr,
                             unsigned long long propagation, unsigned long long userns_fd) {
        struct mount_attr attr = { .attr_set = attr_set, .attr_clr = attr_clr,
                                   .propagation = propagation, .userns_fd = userns_fd };
        return syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr));
    }
    int pyrunc_open_tree(int dirfd, const char *path, unsigned int flags) {
        return syscall(SYS_open_tree, dirfd, path, flags);
    }
    int pyrunc_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                          const char *to_path, unsigned int flags) {
        return syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
    }
    /* capset with the 64-bit (v3) layout; python-prctl names caps only up to
       its build's CAP_LAST_CAP, so exact sets go through here. */
    int pyrunc_capset(unsigned int eff0, unsigned int eff1, unsigned int prm0,
                      unsigned int prm1, unsigned int inh0, unsigned int inh1) {
        struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct data[2] = {
            { eff0, prm0, inh0 }, { eff1, prm1, inh1 } };
        return syscall(SYS_capset, &hdr, data);
    }
    /* raw syscalls: glibc's wrappers would broadcast to threads, which we never have */
    int pyrunc_setresuid(unsigned int r, unsigned int e, unsigned int s) {
        return syscall(SYS_setresuid, r, e, s);
    }
    int pyrunc_setresgid(unsigned int r, unsigned int e, unsigned int s) {
        return syscall(SYS_setresgid, r, e, s);
    }
    long pyrunc_keyctl(int op, unsigned long a2, unsigned long a3,
                       unsigned long a4, unsigned long a5) {
        return syscall(SYS_keyctl, op, a2, a3, a4, a5);
    }
    /* renameat2(RENAME_EXCHANGE): pyrunc/state.py's save() swaps a new
       state.json in; a rename over the old one would make ext4 write the new
       one out at once (auto_da_alloc), and the delete's unlink then wait on it */
    int pyrunc_rename_exchange(const char *a, const char *b) {
        return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
    }
    /* executor/sync.py's channel: one message a datagram */
    #include <sys/socket.h>
    int pyrunc_seqpacket_pair(int fds[2]) {
        return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
    }
    /* fork() with clone flags (new namespaces) and, when cgroup_fd >= 0, the
       child born in that cgroup2 directory (CLONE_INTO_CGROUP): a move into a
       cgroup after birth takes the kernel's global cgroup_threadgroup_rwsem
       for writing, which first waits for an RCU grace period (milliseconds); a
       birth there takes it only for reading.  Python's own fork bookkeeping
       (locks, thread states) is done as os.fork() does it, with the GIL, which
       cffi released around this call. */
    /* in the stable ABI since 3.7; cffi's default limited API (3.2) hides them */
    void PyOS_BeforeFork(void);
    void PyOS_AfterFork_Parent(void);
    void PyOS_AfterFork_Child(void);
    struct pyrunc_clone_args {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
                 tls, set_tid, set_tid_size, cgroup;
    };
    long pyrunc_clone_fork(unsigned long long flags, int cgroup_fd) {
        struct pyrunc_clone_args args;
        PyGILState_STATE gil;
        long pid;
        int saved;
        memset(&args, 0, sizeof(args));
        args.flags = flags;
        if (cgroup_fd >= 0) {
            args.flags |= 0x200000000ULL;     /* CLONE_INTO_CGROUP (linux 5.7) */
            args.cgroup = (uint64_t)cgroup_fd;
        }
        args.exit_signal = SIGCHLD;
        gil = PyGILState_Ensure();
        PyOS_BeforeFork();
        pid = syscall(435 /* SYS_clone3 */, &args, sizeof(args));
        saved = errno;
        if (pid == 0)
            PyOS_AfterFork_Child();
        else
            PyOS_AfterFork_Parent();
        PyGILState_Release(gil);
        errno = saved;
        return pid;
    }

    /* --- process attributes and console --- */
    #include <sys/resource.h>
    /* not Python's resource module: its own .so to load on every create */
    int pyrunc_setrlimit(int resource, unsigned long long soft, unsigned long long hard) {
        struct rlimit rl = { .rlim_cur = soft, .rlim_max = hard };
        return setrlimit(resource, &rl);
    }
    #include <string.h>
    #include <sys/vfs.h>
    #include <sys/ioctl.h>
    #include <sys/socket.h>
    #include <net/if.h>
    #include <linux/magic.h>
    #ifndef TIOCGPTPEER
    #define TIOCGPTPEER _IO('T', 0x41)
    #endif

    long pyrunc_fstatfs_magic(int fd) {
        struct statfs st;
        if (fstatfs(fd, &st) < 0)
            return -1;
        return (long)st.f_type;
    }
    /* `ip link set NAME up` through SIOC[GS]IFFLAGS: pyroute2 costs 130 ms of imports */
    int pyrunc_link_up(const char *name) {
        struct ifreq ifr;
        int ret = -1, err;
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return -1;
        memset(&ifr, 0, sizeof(ifr));
        strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
            ifr.ifr_flags |= IFF_UP;
            ret = ioctl(s, SIOCSIFFLAGS, &ifr);
        }
        err = errno;
        close(s);
        errno = err;
        return ret;
    }
    int pyrunc_pty_unlock(int fd) {
        int unlock = 0;
        return ioctl(fd, TIOCSPTLCK, &unlock);
    }
    int pyrunc_pty_number(int fd) {
        unsigned int n;
        if (ioctl(fd, TIOCGPTN, &n) < 0)
            return -1;
        return (int)n;
    }
    /* open the slave from the master fd: no path lookup in a devpts we don't trust */
    int pyrunc_pty_peer(int fd, int flags) {
        return ioctl(fd, TIOCGPTPEER, flags);
    }
    int pyrunc_set_winsize(int fd, unsigned short rows, unsigned short cols) {
        struct winsize ws = { .ws_row = rows, .ws_col = cols };
        return ioctl(fd, TIOCSWINSZ, &ws);
    }
    int pyrunc_setctty(int fd) {
        return ioctl(fd, TIOCSCTTY, 0);
    }

    /* --- scheduling, I/O priority, personality, NUMA policy --- */
    #include <sys/personality.h>

    /* sched_attr as of SCHED_ATTR_SIZE_VER1 (56 bytes); glibc 2.36 has neither
       the struct nor a wrapper.  The utilisation clamps stay 0. */
    struct pyrunc_sched_attr {
        uint32_t size, policy;
        uint64_t flags;
        int32_t nice;
        uint32_t priority;
        uint64_t runtime, deadline, period;
        uint32_t util_min, util_max;
    };
    int pyrunc_sched_setattr(int pid, unsigned int policy, unsigned long long flags, int nice,
                             unsigned int priority, unsigned long long runtime,
                             unsigned long long deadline, unsigned long long period) {
        struct pyrunc_sched_attr attr = {
            .size = sizeof(attr), .policy = policy, .flags = flags, .nice = nice,
            .priority = priority, .runtime = runtime, .deadline = deadline, .period = period };
        return syscall(SYS_sched_setattr, pid, &attr, 0);
    }
    int pyrunc_ioprio_set(int which, int who, int ioprio) {
        return syscall(SYS_ioprio_set, which, who, ioprio);
    }
    long pyrunc_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode) {
        return syscall(SYS_set_mempolicy, mode, nodemask, maxnode);
    }

    /* --- bpf(2) for the cgroup v2 device filter; glibc has no wrapper --- */
    #include <linux/bpf.h>

    static long pyrunc_bpf(int cmd, union bpf_attr *attr) {
        return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
    }
    int pyrunc_bpf_prog_load(unsigned int prog_type, const void *insns, unsigned int insn_cnt,
                             const char *license, char *log_buf, unsigned int log_size) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.prog_type = prog_type;
        attr.insns = (unsigned long)insns;
        attr.insn_cnt = insn_cnt;
        attr.license = (unsigned long)license;
        if (log_buf && log_size) {
            attr.log_buf = (unsigned long)log_buf;
            attr.log_size = log_size;
            attr.log_level = 1;
        }
        return (int)pyrunc_bpf(BPF_PROG_LOAD, &attr);
    }
    int pyrunc_bpf_prog_attach(int prog_fd, int target_fd, unsigned int attach_type,
                               unsigned int flags) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.target_fd = target_fd;
        attr.attach_bpf_fd = prog_fd;
        attr.attach_type = attach_type;
        attr.attach_flags = flags;
        return (int)pyrunc_bpf(BPF_PROG_ATTACH, &attr);
    }
    int pyrunc_bpf_prog_detach(int prog_fd, int target_fd, unsigned int attach_type) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.target_fd = target_fd;
        attr.attach_bpf_fd = prog_fd;
        attr.attach_type = attach_type;
        return (int)pyrunc_bpf(BPF_PROG_DETACH, &attr);
    }
    /* *count: room in ids on the way in, programs attached on the way out */
    int pyrunc_bpf_prog_query(int target_fd, unsigned int attach_type, unsigned int *ids,
                              unsigned int *count) {
        union bpf_attr attr;
        int ret;
        memset(&attr, 0, sizeof(attr));
        attr.query.target_fd = target_fd;
        attr.query.attach_type = attach_type;
        attr.query.prog_ids = (unsigned long)ids;
        attr.query.prog_cnt = *count;
        ret = (int)pyrunc_bpf(BPF_PROG_QUERY, &attr);
        *count = attr.query.prog_cnt;
        return ret;
    }
    int pyrunc_bpf_prog_get_fd_by_id(unsigned int id) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.prog_id = id;
        return (int)pyrunc_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    }

    /* --- seccomp --- */
    #include <seccomp.h>
    #include <linux/filter.h>
    #ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    #define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
    #endif
    #define PYRUNC_SCMP_ACT_ERRNO SCMP_ACT_ERRNO(0)
    #define PYRUNC_SCMP_ACT_TRACE SCMP_ACT_TRACE(0)
    #define PYRUNC_SCMP_CMP_NE SCMP_CMP_NE
    #define PYRUNC_SCMP_CMP_LT SCMP_CMP_LT
    #define PYRUNC_SCMP_CMP_LE SCMP_CMP_LE
    #define PYRUNC_SCMP_CMP_EQ SCMP_CMP_EQ
    #define PYRUNC_SCMP_CMP_GE SCMP_CMP_GE
    #define PYRUNC_SCMP_CMP_GT SCMP_CMP_GT
    #define PYRUNC_SCMP_CMP_MASKED_EQ SCMP_CMP_MASKED_EQ

    /* conds: `count` groups of (arg, op, datum_a, datum_b), all ANDed */
    int pyrunc_scmp_rule_add(scmp_filter_ctx ctx, uint32_t action, int syscall,
                             unsigned int count, const uint64_t *conds) {
        struct scmp_arg_cmp cmp[6];
        unsigned int i;
        if (count > 6)
            return -EINVAL;
        for (i = 0; i < count; i++) {
            cmp[i].arg = (unsigned int)conds[4 * i];
            cmp[i].op = (enum scmp_compare)conds[4 * i + 1];
            cmp[i].datum_a = conds[4 * i + 2];
            cmp[i].datum_b = conds[4 * i + 3];
        }
        return seccomp_rule_add_array(ctx, action, syscall, count, cmp);
    }
    /* returns the listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0 */
    int pyrunc_seccomp_load(unsigned int flags, const void *insns, unsigned int count) {
        struct sock_fprog prog = { .len = (unsigned short)count,
                                   .filter = (struct sock_filter *)insns };
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    }
    /* no program: EFAULT if the kernel knows the flags, EINVAL if not */
    int pyrunc_seccomp_probe_flags(unsigned int flags) {
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL);
    }
""" + _read("clone_vm.c"),
    libraries=["seccomp"],
    # clone_vm.c saves and restores the interpreter's thread state, whose
    # layout the limited API hides
    py_limited_api=False, define_macros=[("_CFFI_NO_LIMITED_API", None)])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
