import pytest

from pyrunc.cli import parse
from pyrunc.errors import UsageError


def test_containerd_create_invocation():
    g, cmd, a = parse(["--root", "/run/containerd/runc/default", "--log", "/b/log.json",
                       "--log-format", "json", "create", "--bundle", "/b", "--pid-file",
                       "/b/init.pid", "--preserve-fds", "2", "--no-pivot", "abc"])
    assert cmd == "create"
    assert g == {"root": "/run/containerd/runc/default", "log": "/b/log.json",
                 "log_format": "json"}
    assert a.args == ["abc"]
    assert a.bundle == "/b" and a.pid_file == "/b/init.pid"
    assert a.preserve_fds == 2 and a.no_pivot is True


def test_podman_equals_syntax_and_single_dash():
    g, cmd, a = parse(["--log-format=json", "-log", "/x.log", "delete", "--force", "id1"])
    assert g["log_format"] == "json" and g["log"] == "/x.log"
    assert cmd == "delete" and a.force is True and a.args == ["id1"]


def test_bool_flag_with_value():
    _, _, a = parse(["kill", "--all=false", "c", "KILL"])
    assert a.all is False and a.args == ["c", "KILL"]


def test_short_aliases():
    _, _, a = parse(["run", "-d", "-b", "/bb", "c"])
    assert a.detach is True and a.bundle == "/bb"


@pytest.mark.parametrize("argv, words", [
    (["create", "--bogus", "x"], "flag provided but not defined: -bogus"),
    (["create"], "requires exactly 1 argument"),
    (["start", "a", "b"], "requires exactly 1 argument"),
    (["kill", "a", "b", "c"], "maximum of 2"),
    (["create", "--preserve-fds", "x", "c"], 'invalid value "x"'),
    (["frobnicate"], "No help topic"),
    (["create", "--bundle"], "flag needs an argument"),
])
def test_usage_errors(argv, words):
    with pytest.raises(UsageError, match=words):
        parse(argv)


def test_flags_stop_at_first_positional():
    _, _, a = parse(["kill", "c1", "--all"])
    assert a.flags == {} and a.args == ["c1", "--all"]


def test_version_and_help():
    assert parse(["--version"])[1] == "version"
    assert parse([])[1] == "help"
