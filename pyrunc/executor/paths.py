"""Resolving container paths inside the rootfs, through fds only.

A container path ("/etc/hosts", "/dev/../run/x") names something *inside* the
rootfs, and the rootfs is attacker-controlled: any component may be a symlink
pointing at the host ("/", "../../..") or be swapped for one while we work
(CVE-2019-18837, CVE-2021-30465, CVE-2024-45310).  So a path is never joined
onto the rootfs as a string.  Instead:

- existing paths are opened with openat2(RESOLVE_IN_ROOT), which resolves
  them as if the rootfs were "/" (symlinks included) and never leaves it;
- paths that must be created are walked one component at a time from an fd of
  the rootfs: each step opens a single name with O_NOFOLLOW, a symlink found
  on the way is read and its target walked the same way (an absolute target
  restarts from the rootfs, ".." never climbs above it), and missing
  directories are made with mkdirat() on the parent's fd — the same answers
  as runc's securejoin, without a window between check and use;
- mounts then target "/proc/self/fd/N" of the O_PATH fd we hold, so the kernel
  mounts on exactly the inode we resolved (fd_path()).

Every function takes `sys` (pyrunc.syscalls or the test double) first.
"""
import errno
import posix
import stat

MAX_SYMLINKS = 40          # the kernel's limit for one lookup
_RETRIES = 8               # a name that keeps changing under us is an attack; stop


def fd_path(fd):
    """The magic-link path that makes a path-taking syscall act on `fd` itself."""
    return f"/proc/self/fd/{fd}"


def relative(path):
    """"/a/b" -> "a/b" (and "/" -> "."): relative to the dirfd we pass."""
    p = path.lstrip("/")
    return p or "."


def in_root_flags(sys):
    return sys.C.RESOLVE_IN_ROOT | sys.C.RESOLVE_NO_MAGICLINKS


def open_in_root(sys, root_fd, path, flags=None):
    """Open an existing container path, resolved as if root_fd were "/"."""
    if flags is None:
        flags = sys.O_PATH
    return sys.openat2(root_fd, relative(path), flags, 0, in_root_flags(sys))


def open_no_symlinks(sys, dir_fd, path, flags=None):
    """Open `path` below dir_fd refusing every symlink on the way (ELOOP).

    For paths after pivot_root (masked/readonly paths, sysctls): they are
    fixed names like /proc/sys/..., where a symlink can only be a trick.  With
    O_PATH|O_NOFOLLOW a symlink as the *last* component is returned as itself
    (openat2's rule): callers fstat the fd and refuse it.
    """
    if flags is None:
        flags = sys.O_PATH | sys.O_NOFOLLOW
    return sys.openat2(dir_fd, relative(path), flags, 0,
                       sys.C.RESOLVE_NO_SYMLINKS | sys.C.RESOLVE_NO_MAGICLINKS)


def mkdir_all_in_root(sys, root_fd, path, mode=0o755):
    """mkdir -p inside the root; returns an O_PATH fd of the directory."""
    try:
        return open_in_root(sys, root_fd, path, sys.O_PATH | sys.O_DIRECTORY)
    except FileNotFoundError:
        pass
    return _walk(sys, root_fd, path, create="dir", mode=mode, dir_mode=mode)


def create_file_in_root(sys, root_fd, path, mode=0o644, dir_mode=0o755):
    """Make sure `path` exists (as an empty file if it did not) for a file bind mount.

    Returns an O_PATH fd of whatever is there: an existing directory is left
    alone, as runc does, and the mount that follows reports the mismatch.
    """
    try:
        return open_in_root(sys, root_fd, path, sys.O_PATH)
    except FileNotFoundError:
        pass
    return _walk(sys, root_fd, path, create="file", mode=mode, dir_mode=dir_mode)


def resolve_parent_in_root(sys, root_fd, path, mode=0o755):
    """(O_PATH fd of the parent directory, last name) for creating `path` ourselves.

    The parent is created if missing.  The name is never ".." or "." (the
    path is refused then), so a following *at() call stays in the parent.
    """
    parts = [c for c in path.split("/") if c not in ("", ".")]
    if not parts or parts[-1] == "..":
        raise OSError(errno.EINVAL, "invalid path in rootfs", path)
    parent = "/" + "/".join(parts[:-1])
    return mkdir_all_in_root(sys, root_fd, parent, mode), parts[-1]


def fd_location(sys, fd):
    """Where the kernel says fd is (readlink of its /proc/self/fd link), or None."""
    try:
        return sys.readlinkat(None, fd_path(fd))
    except OSError:
        return None


def check_inside(sys, fd, root_location):
    """Refuse an fd that resolved outside the root (root_location: fd_location(root_fd)).

    openat2(RESOLVE_IN_ROOT) and the walk below cannot escape; this is the
    belt to their braces, checked where it is cheap (before each mount).
    """
    root = (root_location or "").rstrip("/")
    where = fd_location(sys, fd) if root else None
    if where is None:
        return
    if where != root and not where.startswith(root + "/"):
        raise OSError(errno.EXDEV, f"path resolved outside the rootfs to {where}")


# --- the walk ---------------------------------------------------------------

def _walk(sys, root_fd, path, create, mode=0o755, dir_mode=0o755):
    """Resolve `path` component by component inside root_fd, creating what is missing.

    create: "dir" (every missing component becomes a directory) or "file"
    (the last one becomes an empty regular file).  Returns an O_PATH fd.
    """
    todo = _split(path)
    stack = []             # fds of the directories walked into; [] means the root
    links = 0
    retries = 0
    try:
        while True:
            if not todo:
                # the path named the root itself (or ".." above it)
                return sys.openat2(stack[-1] if stack else root_fd, ".",
                                   sys.O_PATH | sys.O_DIRECTORY, 0, 0)
            name = todo.pop(0)
            if name == "..":
                if stack:
                    sys.close(stack.pop())
                continue
            parent = stack[-1] if stack else root_fd
            last = not todo
            try:
                fd = _open_one(sys, parent, name)
            except FileNotFoundError:
                retries += 1
                if retries > _RETRIES:
                    raise
                _create_one(sys, parent, name, "file" if last and create == "file" else "dir",
                            mode if last else dir_mode)
                todo.insert(0, name)          # open what we (or a racer) just made
                continue
            st = sys.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                try:
                    if links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                    target = sys.readlinkat(fd, "")
                finally:
                    sys.close(fd)
                if target.startswith("/"):
                    while stack:
                        sys.close(stack.pop())
                todo = _split(target) + todo
                continue
            if last:
                if create == "dir" and not stat.S_ISDIR(st.st_mode):
                    sys.close(fd)
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
                return fd
            if not stat.S_ISDIR(st.st_mode):
                sys.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            stack.append(fd)
    finally:
        for fd in stack:
            sys.close(fd)


def _split(path):
    return [c for c in path.split("/") if c not in ("", ".")]


def _open_one(sys, parent, name):
    # One name, no slashes: O_NOFOLLOW gives us the symlink itself to read,
    # RESOLVE_BENEATH|NO_MAGICLINKS rule out anything cleverer.
    return sys.openat2(parent, name, sys.O_PATH | sys.O_NOFOLLOW, 0,
                       sys.C.RESOLVE_BENEATH | sys.C.RESOLVE_NO_MAGICLINKS)


def _create_one(sys, parent, name, kind, mode):
    try:
        if kind == "dir":
            sys.mkdirat(parent, name, mode)
        else:
            # O_EXCL|O_NOFOLLOW: never create through (or open) a symlink here
            fd = sys.openat2(parent, name,
                             posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | sys.O_NOFOLLOW, mode,
                             sys.C.RESOLVE_BENEATH | sys.C.RESOLVE_NO_MAGICLINKS)
            sys.close(fd)
    except FileExistsError:
        pass   # a dangling symlink or a racer: the next open finds out which

