"""Where messages go: stderr (one line, `pyrunc: ...`) and the --log file.

With --log-format json every line of the log file is one JSON object
{"level", "msg", "time"} — containerd shows the msg of the last error line,
so it must always parse, whatever the message contains.
"""
import posix   # not os: see pyrunc/state.py
import sys
import time

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


class Log:
    def __init__(self):
        self.path = None
        self.format = "text"
        self.debug_enabled = False

    def configure(self, path=None, fmt="text", debug=False):
        self.path = path
        self.format = fmt
        self.debug_enabled = debug

    @staticmethod
    def _time():
        t = time.time()
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"

    def _line(self, level, msg):
        # only with --log: start/kill/delete need no JSON module otherwise (see state.py)
        from pyrunc import fastjson
        if self.format == "json":
            return fastjson.dumps({"level": level, "msg": msg, "time": self._time()}) + "\n"
        return f'time="{self._time()}" level={level} msg={fastjson.dumps(msg)}\n'

    def write(self, level, msg, to_stderr):
        if level == "debug" and not self.debug_enabled:
            return
        msg = " ".join(str(msg).split("\n"))
        if to_stderr:
            try:
                sys.stderr.write(f"pyrunc: {msg}\n" if level == "error" else f"pyrunc: {level}: {msg}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
        if self.path:
            try:
                # one write() of an O_APPEND fd keeps concurrent writers' lines whole
                flags = posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC
                fd = posix.open(self.path, flags, 0o644)
                try:
                    posix.write(fd, self._line(level, msg).encode())
                finally:
                    posix.close(fd)
            except OSError:
                pass

    def error(self, msg):
        self.write("error", msg, True)

    def warning(self, msg):
        # create's stderr is the container's: with a log file, warnings go only there
        self.write("warning", msg, not self.path)

    def debug(self, msg):
        self.write("debug", msg, self.debug_enabled and not self.path)


log = Log()
