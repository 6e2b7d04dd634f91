"""The project's exception hierarchy.

Everything below the CLI raises one of these; only the CLI edge turns them into
a message, a log line and an exit code.  Messages are written so that clients
which pattern-match runc's wording (docker, podman) map them to the same exit
codes: "no such file or directory" -> 127, "permission denied" -> 126.
"""


class PyruncError(Exception):
    """Base class: a failure we can explain in one line."""

    exit_code = 1


class ConfigError(PyruncError):
    """config.json (or process.json) is malformed or asks for something invalid.

    `path` is the JSON path of the offending value, e.g. ``process.args``.
    """

    def __init__(self, path, message):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class UsageError(PyruncError):
    """Bad command line."""


class ContainerNotFound(PyruncError):
    def __init__(self, cid):
        super().__init__(f"container {cid} does not exist")
        self.cid = cid


class ContainerExists(PyruncError):
    def __init__(self, cid):
        super().__init__(f"container with id {cid} already exists")


class StateError(PyruncError):
    """The container is in the wrong state for the command."""


class RuntimeFailure(PyruncError):
    """A step of setting up or running the container failed."""


class HookError(RuntimeFailure):
    pass


def oserror_text(err):
    """errno text the way Go's syscall.Errno prints it (lower case)."""
    import posix
    text = posix.strerror(err.errno) if err.errno else str(err)
    return text[0].lower() + text[1:] if text else text
