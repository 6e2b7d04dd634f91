"""start, kill and delete read state.json's head without the JSON parser
(pyrunc/state.py head()), and save() swaps a new state.json in (no rename over
the old one).  These hold the fast paths to giving the same answers as the
slow ones, and to being taken."""
import json
import os
import subprocess
import sys

import pytest

from pyrunc import fastjson
from pyrunc.state import HEAD, Container, State, _head_state, proc_start_time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _state(cid="c1", pid=0, **kw):
    d = dict(id=cid, pid=pid, bundle="/b", rootfs="/b/rootfs", created="2026-01-01T00:00:00Z",
             init_start_time=0, status_hint="created")
    d.update(kw)
    return State(**d)


def _head_fields(st):
    return {k: getattr(st, k) for k in HEAD if k != "hook_stages"}


CASES = [
    _state(),
    _state(pid=123, init_start_time=456, new_pid_ns=False, status_hint="creating"),
    _state(cgroups={"cpu": "/sys/fs/cgroup/cpu/c1", "name=systemd": "/sys/fs/cgroup/systemd/c1",
                    "unified": "/sys/fs/cgroup/unified/c1"},
           cgroups_created=["/sys/fs/cgroup/cpu/p", "/sys/fs/cgroup/cpu/c1"]),
    _state(config={"hooks": {"poststart": [{"path": "/bin/true"}], "poststop": [],
                             "prestart": [{"path": "/x"}]}},
           annotations={"k": "v \u00e9 \U0001F600 \" \\"}),
    # what the head reader leaves to the JSON parser: escapes in its strings
    _state(cgroups={"cpu": "/sys/fs/cgroup/cpu/c\u00e9"}),
    _state(cgroups={"cpu": '/sys/fs/cgroup/cpu/a"b\\c'}, cgroups_created=["/x\ny"]),
    _state(cid="c+1.x_y-z"),
]


@pytest.mark.parametrize("st", CASES)
def test_head_reads_what_the_json_parser_reads(st):
    data = fastjson.dumps(st.to_json_dict()).encode()
    head = _head_state(data)
    full = State.from_json_dict(json.loads(data))
    assert _head_fields(full) == _head_fields(st)
    if head is None:   # only where a string has an escape
        assert b"\\" in data.split(b'"bundle": ')[0]
        return
    assert _head_fields(head) == _head_fields(st)
    assert head.config is None
    for stage in ("prestart", "poststart", "poststop"):
        assert head.has_hooks(stage) == full.has_hooks(stage) == bool(st.hooks(stage))


def test_the_common_state_is_read_by_the_head_reader():
    assert _head_state(fastjson.dumps(CASES[2].to_json_dict()).encode()) is not None


@pytest.mark.parametrize("text", [
    b"", b"{}", b"[]", b'{"id": "c1"}',
    # another layout (an older pyrunc's key order): the JSON parser reads it
    json.dumps({"id": "c1", "pid": 1, "bundle": "/b", "init_start_time": 2}).encode(),
    b'{"id": "c1", "pid": 01, ',
    b'{"id": "c1", "pid": -1, ',
    b'{"id": "c1", "pid": 1.5, ',
    b'{"id": "c1", "pid": "1", ',
    b'{"id": "c1", "pid": 1, "init_start_time": 2, "new_pid_ns": 1, ',
    "{\"id\": \"c\u00e9\"".encode(),
])
def test_head_reader_declines_anything_else(text):
    assert _head_state(text) is None


def test_head_then_whole_state(tmp_path):
    c = Container(str(tmp_path), "c1")
    c.make_dir()
    st = _state(config={"hooks": {"poststop": [{"path": "/bin/true"}]}, "x": 1},
                annotations={"a": "b"})
    c.save(st)
    c.unlock()
    c = Container(str(tmp_path), "c1")
    head = c.head()
    assert head.config is None and head.has_hooks("poststop")
    assert c.head() is head   # read once
    with pytest.raises(AttributeError):
        head.bundle           # not read: a use of it fails loudly
    whole = c.state
    assert whole.config == {"hooks": {"poststop": [{"path": "/bin/true"}]}, "x": 1}
    assert whole.annotations == {"a": "b"} and c.oci_state()["bundle"] == "/b"


def test_a_state_file_of_another_layout_is_parsed_whole(tmp_path):
    """A state.json an older pyrunc (or a test) wrote: same answers, by the parser."""
    os.mkdir(tmp_path / "c1")
    doc = {"id": "c1", "pid": 0, "bundle": "/b", "rootfs": "/r", "created": "t", "owner": "",
           "annotations": {}, "init_start_time": 0, "new_pid_ns": True,
           "status_hint": "created", "config": {"hooks": {"poststart": [{"path": "/x"}]}},
           "cgroups": {"cpu": "/c"}, "cgroups_created": ["/c"]}
    (tmp_path / "c1" / "state.json").write_text(json.dumps(doc))
    head = Container(str(tmp_path), "c1").head()
    assert head.config is not None and head.has_hooks("poststart")
    assert (head.cgroups, head.status_hint) == ({"cpu": "/c"}, "created")


def test_saved_file_is_plain_json_with_the_head_first(tmp_path):
    c = Container(str(tmp_path), "c1")
    c.make_dir()
    c.save(_state(config={"hooks": {"poststop": [{"path": "/bin/true"}]}}))
    c.unlock()
    with open(tmp_path / "c1" / "state.json") as f:
        doc = json.load(f)
    assert list(doc)[:len(HEAD)] == list(HEAD)
    assert doc["hook_stages"] == ["poststop"] and doc["status_hint"] == "created"
    assert State.from_json_dict(doc).config == {"hooks": {"poststop": [{"path": "/bin/true"}]}}


def test_save_swaps_the_new_state_in_when_syscalls_is_loaded(tmp_path, monkeypatch):
    """The 2nd and later saves of a create exchange the names (no rename over
    state.json, which makes ext4 write the file out and delete's unlink wait)."""
    import pyrunc.syscalls as sc
    swaps = []
    real = sc.rename_exchange

    def spy(a, b):
        swaps.append((os.path.basename(a), os.path.basename(b)))
        return real(a, b)
    monkeypatch.setattr(sc, "rename_exchange", spy)
    c = Container(str(tmp_path), "c1")
    c.make_dir()
    c.save(_state(status_hint="creating"))     # no state.json yet: a plain rename
    ino = os.stat(tmp_path / "c1" / "state.json").st_ino
    c.save(_state(pid=7, status_hint="created"))
    c.unlock()
    assert swaps == [("state.json.tmp", "state.json")] * 2   # the first one failed: ENOENT
    assert sorted(os.listdir(tmp_path / "c1")) == ["state.json"]
    assert os.stat(tmp_path / "c1" / "state.json").st_ino != ino
    assert Container(str(tmp_path), "c1").load().pid == 7


def _run_cli(root, *argv):
    """pyrunc's main in a fresh interpreter as the launcher runs it; its modules."""
    probe = (f"import sys\nsys.path += {[REPO]!r}\n"
             "from pyrunc.cli import main\ncode = main(sys.argv[1:])\n"
             "sys.stdout.write('\\n@@' + str(code) + ' ' + ' '.join(sorted(sys.modules)) + '\\n')\n")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", probe, "--root", str(root), *argv],
                       capture_output=True, text=True, check=True)
    code, *modules = r.stdout.rsplit("@@", 1)[1].split()
    return int(code), set(modules), r.stderr


def _stopped_container(root, cid, cgroups, created):
    """A state dir whose init is long gone (a reaped child's pid and a start time
    it never had), with plain directories standing in for its cgroups."""
    c = Container(str(root), cid)
    c.make_dir()
    p = subprocess.Popen(["true"])
    p.wait()
    c.save(_state(cid, pid=p.pid, init_start_time=1, cgroups=cgroups,
                  cgroups_created=created, config={"process": {"args": ["true"]}}))
    c.unlock()


# what reading state.json with the parser, and the cgroup manager, would load
NOT_ON_THE_FAST_PATH = {"_json", "pyrunc.fastjson", "pyrunc.cgroups.manager", "pyrunc.procs",
                        "pyrunc.commands", "errno", "select"}


def test_delete_of_a_stopped_container_takes_the_fast_path(tmp_path):
    leaves = {k: str(tmp_path / "cg" / k / "c1") for k in ("cpu", "memory", "unified")}
    leaves["cpuacct"] = leaves["cpu"]   # co-mounted: one directory
    for d in leaves.values():
        os.makedirs(d, exist_ok=True)
    _stopped_container(tmp_path / "root", "c1", leaves, sorted(set(leaves.values())))
    code, modules, err = _run_cli(tmp_path / "root", "delete", "c1")
    assert (code, err) == (0, "")
    assert "pyrunc.lifecycle" in modules and modules & NOT_ON_THE_FAST_PATH == set()
    assert not any(os.path.exists(d) for d in leaves.values())
    assert os.listdir(tmp_path / "root") == []


def test_delete_removes_the_parents_create_made(tmp_path):
    """Parents in cgroups_created: the manager decides (and a shared one stays)."""
    made, shared = tmp_path / "cg" / "cpu" / "made", tmp_path / "cg" / "cpu" / "shared"
    (made / "c1").mkdir(parents=True)
    (shared / "c2").mkdir(parents=True)
    (shared / "other").mkdir()
    cgroups = {"cpu": str(made / "c1"), "memory": str(shared / "c2")}
    _stopped_container(tmp_path / "root", "c1", cgroups,
                       [str(made), str(made / "c1"), str(shared), str(shared / "c2")])
    code, modules, err = _run_cli(tmp_path / "root", "delete", "c1")
    assert (code, err) == (0, "")
    assert "pyrunc.cgroups.manager" in modules and "_json" not in modules
    assert not made.exists() and not (shared / "c2").exists()
    assert (shared / "other").is_dir()
    assert os.listdir(tmp_path / "root") == []


def test_delete_of_a_stopped_container_with_a_busy_cgroup_kills_and_waits(tmp_path):
    """A leaf that cannot go at once (here: it has a child directory, as a
    cgroup with a process or a nested cgroup refuses rmdir) means the slow
    path: the manager walks it and removes it all."""
    leaf = tmp_path / "cg" / "cpu" / "c1"
    (leaf / "nested").mkdir(parents=True)
    _stopped_container(tmp_path / "root", "c1", {"cpu": str(leaf)}, [str(leaf)])
    code, modules, err = _run_cli(tmp_path / "root", "delete", "c1")
    assert (code, err) == (0, "")
    assert "pyrunc.cgroups.manager" in modules
    assert not leaf.exists() and os.listdir(tmp_path / "root") == []


def test_start_and_kill_read_no_json(tmp_path):
    """start of a created container (this test holds the fifo's read end, as a
    waiting init would), then kill: neither loads the JSON parser."""
    root = tmp_path / "root"
    p = subprocess.Popen(["sleep", "30"])
    try:
        c = Container(str(root), "c1")
        c.make_dir()
        c.save(_state("c1", pid=p.pid, init_start_time=proc_start_time(p.pid),
                      config={"process": {"args": ["sleep"]}}))
        os.mkfifo(c.fifo_path)
        reader = os.open(c.fifo_path, os.O_RDONLY | os.O_NONBLOCK)
        c.unlock()
        try:
            code, modules, err = _run_cli(root, "start", "c1")
            assert (code, err) == (0, "") and os.read(reader, 1) == b"0"
        finally:
            os.close(reader)
        assert "pyrunc.lifecycle" in modules and modules & NOT_ON_THE_FAST_PATH == set()
        assert not os.path.exists(c.fifo_path)
        code, modules, err = _run_cli(root, "kill", "c1", "KILL")
        assert (code, err) == (0, "")
        assert modules & (NOT_ON_THE_FAST_PATH - {"pyrunc.procs"}) == set()
        assert p.wait(5) == -9
    finally:
        p.kill()
        p.wait()
    code, modules, err = _run_cli(root, "delete", "c1")
    assert code == 0 and os.listdir(root) == []
