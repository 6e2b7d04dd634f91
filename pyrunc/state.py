"""The state store: one directory per container under the runtime root.

<root>/<id>/state.json   what `pyrunc state` reports, plus what later commands need
<root>/<id>/exec.fifo    exists while the container is created but not started

state.json starts with the few keys start, kill and delete need (HEAD), in a
fixed order and layout, so that those commands read them with string
operations (head()) instead of loading the JSON parser (_json is a shared
library: ~0.2 ms a call, more than the rest of reading the state).  The file
is plain JSON all the same; whatever does not have that layout (an older
pyrunc's file, a test's) is parsed whole.

Status is derived, never stored: the init's pid (guarded by its start time
against pid reuse) says whether it lives, the fifo says whether it was started.
Every command that changes a container holds an flock on its directory.

This module (like cli, log, lifecycle, procs and cgroups.manager, everything
state/start/kill/delete load) uses `posix`, not `os`: importing os costs a
command ~0.8 ms (it builds os.environ and imports _collections_abc), a sixth
of what `pyrunc state` takes beyond the interpreter's own start-up.
"""
import fcntl
import posix
import sys
import time

from pyrunc.errors import ContainerExists, ContainerNotFound, RuntimeFailure, UsageError

OCI_VERSION = "1.2.0"
STATE_FILE = "state.json"
FIFO = "exec.fifo"


def join(base, name):
    """os.path.join(base, name) for a name without "/" at its start."""
    return base + name if not base or base.endswith("/") else f"{base}/{name}"


def exists(path):
    """os.path.exists without os."""
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def read_bytes(path):
    """The whole file: open, read, close (builtin open() adds a buffered
    reader and five syscalls, fstat, ioctl, lseek, that a small file does not need)."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        data = posix.read(fd, 65536)
        if len(data) == 65536:
            chunks = [data]
            while data:
                data = posix.read(fd, 65536)
                chunks.append(data)
            data = b"".join(chunks)
    finally:
        posix.close(fd)
    return data


def write_new(path, data):
    """Create or truncate path (0644) and write data: read_bytes's counterpart."""
    fd = posix.open(path, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[posix.write(fd, view):]
    finally:
        posix.close(fd)


def read_text(path):
    """The file as text, "" if it cannot be read."""
    try:
        return read_bytes(path).decode()
    except (OSError, ValueError):
        return ""


def is_frozen(paths):
    """Whether the container whose state saved these cgroup `paths` is paused
    (one file read; here rather than in cgroups.manager, which `state` need not load)."""
    if not paths:
        return False
    if "freezer" in paths:
        return read_text(join(paths["freezer"], "freezer.state")).strip() == "FROZEN"
    unified = paths.get("unified")
    if unified and len(paths) == 1:
        return read_text(join(unified, "cgroup.freeze")).strip() == "1"
    return False


def default_root():
    """/run/pyrunc for root; for others $XDG_RUNTIME_DIR/pyrunc or a vetted private
    fallback (the rules are in pyrunc/rootless.py)."""
    euid = posix.geteuid()
    # posix.environ is the dict under os.environ: it sees os.environ's changes
    if euid == 0 and posix.environ.get(b"XDG_RUNTIME_DIR", b"") == b"":
        return "/run/pyrunc"     # the common case, without reading /proc/self/uid_map
    from pyrunc.rootless import state_root
    return state_root()


def check_id(cid):
    if not cid:
        raise UsageError("container id cannot be empty")
    if cid in (".", "..") or "/" in cid or not all(c.isalnum() or c in "_+-." for c in cid):
        raise UsageError(f"invalid container id format: {cid}")


def rfc3339_now():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + \
        f".{ns % 1_000_000_000:09d}Z"


def proc_start_time(pid):
    """Field 22 of /proc/<pid>/stat, or None if the pid is gone or a zombie."""
    try:
        data = read_bytes(f"/proc/{pid}/stat")
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


# The keys save() writes first, in this order: what head() reads.  hook_stages
# (the hook stages the config has) is derived, saved only so that start and
# delete know without the config whether they have hooks to run.
HEAD = ("id", "pid", "init_start_time", "new_pid_ns", "status_hint", "cgroups",
        "cgroups_created", "hook_stages")


class State:
    """What state.json holds.  A plain class, not a dataclass: `import dataclasses`
    costs ~4 ms, and state/start/kill/delete must stay lean.

    A State from Container.head() has only the HEAD fields; its config is None
    (the others are not set at all, so that a use of them fails loudly)."""

    FIELDS = ("id", "pid", "init_start_time", "new_pid_ns", "status_hint", "cgroups",
              "cgroups_created", "bundle", "rootfs", "created", "owner", "annotations", "config")
    __slots__ = FIELDS + ("hook_stages",)

    def __init__(self, id, pid, bundle, rootfs, created, owner="", annotations=None,
                 init_start_time=0, new_pid_ns=True, status_hint="created",
                 config=None, cgroups=None, cgroups_created=None):
        self.id = id
        self.pid = pid                          # host pid of the init
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created                  # RFC 3339, nanoseconds, UTC
        self.owner = owner
        self.annotations = annotations or {}
        self.init_start_time = init_start_time  # guards against pid reuse
        self.new_pid_ns = new_pid_ns            # kill --all may walk the pid namespace
        self.status_hint = status_hint          # "creating" until create finished
        self.config = config or {}              # config.json as validated at create
        self.cgroups = cgroups or {}            # controller -> cgroup dir we made
        self.cgroups_created = cgroups_created or []   # every dir create made (parents too)

    def hooks(self, stage):
        """The raw hook dicts of one stage from the saved config."""
        return (self.config.get("hooks") or {}).get(stage) or []

    def has_hooks(self, stage):
        """Whether the config has hooks for `stage` (a head-only State knows it too)."""
        if self.config is None:
            return stage in self.hook_stages
        return bool(self.hooks(stage))

    def alive(self):
        return self.pid > 0 and proc_start_time(self.pid) == self.init_start_time

    def to_json_dict(self):
        """The document save() writes: HEAD first (see head()), then the rest."""
        d = {k: getattr(self, k) for k in HEAD[:-1]}
        d["hook_stages"] = [k for k, v in (self.config.get("hooks") or {}).items() if v]
        for k in self.FIELDS[len(HEAD) - 1:]:
            d[k] = getattr(self, k)
        return d

    @classmethod
    def from_json_dict(cls, d):
        d.pop("hook_stages", None)   # derived from config
        return cls(**d)


def _head_state(data):
    """The HEAD fields of state.json as save() lays them out, read with string
    operations; None for any other layout, or a string with an escape in it
    (save() writes ASCII only, so a string without a backslash is its own
    text), which the caller then gives to the JSON parser."""
    try:
        s = data.decode("ascii")
        i, values = 1, []
        if not s.startswith("{"):
            return None
        for key in HEAD:
            if not s.startswith(f'"{key}": ', i):
                return None
            value, i = _head_value(s, i + len(key) + 4)
            if s[i:i + 2] != ", ":
                return None
            values.append(value)
            i += 2
    except (ValueError, IndexError):   # UnicodeDecodeError is a ValueError
        return None
    st = State.__new__(State)
    (st.id, st.pid, st.init_start_time, st.new_pid_ns, st.status_hint, st.cgroups,
     st.cgroups_created, st.hook_stages) = values
    st.config = None
    types = (str, int, int, bool, str, dict, list, list)
    return st if all(type(v) is t for v, t in zip(values, types)) else None


def _head_value(s, i):
    """The value at s[i] and where it ends: a string without escapes, a
    non-negative integer, true/false, or a list or object of such strings."""
    c = s[i]
    if c == '"':
        end = s.index('"', i + 1)
        if "\\" in s[i + 1:end]:
            raise ValueError("an escape: the JSON parser reads it")
        return s[i + 1:end], end + 1
    if c == "[" or c == "{":
        close, items, i = "]" if c == "[" else "}", [], i + 1
        while s[i] != close:
            if items:
                if s[i:i + 2] != ", ":
                    raise ValueError
                i += 2
            if s[i] != '"':
                raise ValueError
            item, i = _head_value(s, i)
            if c == "{":
                if s[i:i + 3] != ': "':
                    raise ValueError
                value, i = _head_value(s, i + 2)
                item = (item, value)
            items.append(item)
        return (dict(items) if c == "{" else items), i + 1
    for word, value in (("true", True), ("false", False)):
        if s.startswith(word, i):
            return value, i + len(word)
    end = i
    while s[end].isdigit():
        end += 1
    if end == i or (s[i] == "0" and end > i + 1):
        raise ValueError("not an integer as JSON writes it")
    return int(s[i:end]), end


class Container:
    """A handle on one container's state directory."""

    def __init__(self, root, cid):
        check_id(cid)
        self.root = root
        self.id = cid
        self.dir = join(root, cid)
        self._lock_fd = -1
        self._state = None

    # --- locking --------------------------------------------------------
    def lock(self):
        """flock the state directory; ContainerNotFound if it is not there (any more)."""
        try:
            fd = posix.open(self.dir, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(self.id) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd
        # a concurrent delete may have removed the directory while we waited
        if not exists(join(self.dir, STATE_FILE)):
            self.unlock()
            raise ContainerNotFound(self.id)
        return self

    def unlock(self):
        if self._lock_fd >= 0:
            posix.close(self._lock_fd)
            self._lock_fd = -1

    @property
    def lock_fd(self):
        return self._lock_fd

    # --- creation -------------------------------------------------------
    def make_dir(self):
        """Claim the id atomically (mkdir) and lock the new directory."""
        from pyrunc.pathstr import makedirs   # create only
        try:
            makedirs(self.root, mode=0o700, exist_ok=True)   # as runc
            posix.mkdir(self.dir, 0o711)
        except FileExistsError:
            raise ContainerExists(self.id) from None
        except OSError as e:
            raise RuntimeFailure(f"cannot create the state directory {self.dir}: "
                                 f"{posix.strerror(e.errno).lower()}") from None
        fd = posix.open(self.dir, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd

    def remove_dir(self):
        for name in (STATE_FILE, STATE_FILE + ".tmp", FIFO):
            try:
                posix.unlink(join(self.dir, name))
            except FileNotFoundError:
                pass
        try:
            posix.rmdir(self.dir)
        except FileNotFoundError:
            pass

    def remove_if_orphan(self):
        """Remove the directory if it has no state.json: what a create killed
        before its first save, or a delete killed after its first unlink,
        leaves.  Neither has a process or a cgroup by then.  Under the lock, so
        a create that is still running (and holds it) is never touched."""
        try:
            fd = posix.open(self.dir, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not exists(join(self.dir, STATE_FILE)):
                self.remove_dir()
        finally:
            posix.close(fd)

    # --- state ------------------------------------------------------------
    def _read(self):
        try:
            return read_bytes(join(self.dir, STATE_FILE))
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(self.id) from None

    def _parse(self, data):
        from pyrunc import fastjson   # not for start/kill/delete: see head()
        try:
            return State.from_json_dict(fastjson.loads(data))
        except (ValueError, TypeError) as e:
            raise RuntimeFailure(f"container {self.id}: corrupt state file: {e}") from None

    def load(self):
        """The whole state, read again."""
        self._state = self._parse(self._read())
        return self._state

    def head(self):
        """The state as far as start, kill and delete need it: the HEAD fields
        only when state.json has save()'s layout (then no JSON parser is loaded),
        else, or when it was loaded already, the whole state."""
        if self._state is None:
            data = self._read()
            self._state = _head_state(data) or self._parse(data)
        return self._state

    @property
    def state(self):
        """The whole state (read now if only the head was)."""
        st = self._state
        return st if st is not None and st.config is not None else self.load()

    def save(self, state):
        from pyrunc import fastjson   # create: loaded by then anyway
        tmp = join(self.dir, STATE_FILE + ".tmp")
        try:
            write_new(tmp, fastjson.dumps(state.to_json_dict()).encode())
            _replace(tmp, join(self.dir, STATE_FILE))
        except OSError as e:
            # a full or read-only state root: say what could not be written
            from pyrunc.errors import oserror_text
            raise RuntimeFailure(f"cannot save the state of container {self.id} in "
                                 f"{self.dir}: {oserror_text(e)}") from None
        self._state = state

    @property
    def fifo_path(self):
        return join(self.dir, FIFO)

    def status(self):
        st = self.head()
        if not st.alive():
            return "stopped"
        if st.status_hint == "creating":
            return "creating"
        if is_frozen(st.cgroups):
            return "paused"
        if exists(self.fifo_path):
            return "created"
        return "running"

    def oci_state(self):
        """The state JSON as runc prints it (`pyrunc state`, hooks' stdin)."""
        st = self.state
        status = self.status()
        d = {
            "ociVersion": OCI_VERSION,
            "id": st.id,
            "pid": st.pid if status != "stopped" else 0,
            "status": status,
            "bundle": st.bundle,
            "rootfs": st.rootfs,
            "created": st.created,
            "owner": st.owner,
        }
        if st.annotations:
            d["annotations"] = st.annotations
        return d


def _replace(tmp, path):
    """rename(tmp, path), path swapped in rather than renamed over where it can be.

    ext4 (auto_da_alloc) writes a file renamed over another out to disk at
    once, so that a crash cannot leave it empty; the unlink of state.json by
    `delete` then finds its blocks allocated (or still being written) and
    takes ~0.3 ms, many ms when the disk is busy, instead of ~10 us.  A state
    directory does not outlive a reboot, so that safety buys nothing here.
    Swapping the names (then unlinking the old file, its data never written)
    replaces just as atomically.  syscalls (cffi) is loaded by the create that
    calls this for the 2nd and later times; otherwise, and where the kernel or
    the file system cannot swap, a plain rename does."""
    sc = sys.modules.get("pyrunc.syscalls")
    if sc is not None:
        try:
            sc.rename_exchange(tmp, path)
        except OSError:
            pass   # path not there yet (the first save), or no RENAME_EXCHANGE here
        else:
            posix.unlink(tmp)   # the old state
            return
    posix.rename(tmp, path)


def list_ids(root):
    try:
        names = posix.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in names if _is_file(join(join(root, n), STATE_FILE)))


def _is_file(path):
    try:
        return posix.stat(path).st_mode & 0o170000 == 0o100000   # S_ISREG
    except (OSError, ValueError):
        return False
