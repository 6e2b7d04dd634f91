"""cffi build script for pyrunc._libc (out-of-line API mode).

Compiled once at install time so that importing the syscall layer costs no
cdef parsing on every (short-lived) pyrunc invocation.  Only pyrunc/syscalls.py
imports the result.
"""
from cffi import FFI

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

    /* process attributes and console (executor/process.py, executor/console.py) */
    #define PROC_SUPER_MAGIC ...
    #define DEVPTS_SUPER_MAGIC ...
    long pyrunc_fstatfs_magic(int fd);
    int pyrunc_link_up(const char *name);
    int pyrunc_pty_unlock(int fd);
    int pyrunc_pty_number(int fd);
    int pyrunc_pty_peer(int fd, int flags);
    int pyrunc_set_winsize(int fd, unsigned short rows, unsigned short cols);
    int pyrunc_setctty(int fd);
""")

ffibuilder.set_source("pyrunc._libc", r"""
    #include <errno.h>
    #include <grp.h>
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

    /* --- process attributes and console --- */
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
""")

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
