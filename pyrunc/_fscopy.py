"""Copy a directory tree between two directory fds (tmpcopyup).

Used by pyrunc.syscalls.copy_tree only.  Everything is fd-relative and never
follows a symlink: the source is the container's own directory (hidden under
the fresh tmpfs), the destination the tmpfs root, and neither may lead out.
Ownership, mode and timestamps are kept, as `cp -a` would.
"""
import os
import stat

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(src_dirfd, dst_dirfd):
    for entry in os.scandir(src_dirfd):
        _copy_entry(src_dirfd, dst_dirfd, entry.name)


def _copy_entry(src_dirfd, dst_dirfd, name):
    st = os.lstat(name, dir_fd=src_dirfd)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        os.mkdir(name, 0o700, dir_fd=dst_dirfd)
        s = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=src_dirfd)
        d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=dst_dirfd)
        try:
            copy_tree(s, d)
            _set_attrs(d, st)
        finally:
            os.close(s)
            os.close(d)
        return
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=src_dirfd), name, dir_fd=dst_dirfd)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dirfd, follow_symlinks=False)
        return
    if stat.S_ISREG(mode):
        s = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=src_dirfd)
        try:
            d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600,
                        dir_fd=dst_dirfd)
            try:
                _copy_data(s, d, st.st_size)
                _set_attrs(d, st)
            finally:
                os.close(d)
        finally:
            os.close(s)
        return
    # device nodes, fifos, sockets: recreate the node itself
    os.mknod(name, mode, st.st_rdev, dir_fd=dst_dirfd)
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dirfd, follow_symlinks=False)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dirfd,
             follow_symlinks=False)


def _copy_data(src, dst, size):
    while size > 0:
        try:
            n = os.copy_file_range(src, dst, size)
        except OSError:
            n = os.sendfile(dst, src, None, size)
        if n == 0:
            break
        size -= n


def _set_attrs(fd, st):
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
