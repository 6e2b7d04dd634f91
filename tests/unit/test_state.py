import json
import os
import subprocess

import pytest

from pyrunc.errors import ContainerExists, ContainerNotFound, UsageError
from pyrunc.state import Container, State, check_id, list_ids, proc_start_time, rfc3339_now


def _state(cid, pid, start):
    return State(id=cid, pid=pid, bundle="/b", rootfs="/b/rootfs", created=rfc3339_now(),
                 init_start_time=start, status_hint="created")


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "x\n"])
def test_bad_ids(cid):
    with pytest.raises(UsageError):
        check_id(cid)


def test_status_is_derived(tmp_path):
    p = subprocess.Popen(["sleep", "30"])
    try:
        c = Container(str(tmp_path), "c1")
        c.make_dir()
        c.save(_state("c1", p.pid, proc_start_time(p.pid)))
        os.mkfifo(c.fifo_path)
        assert c.status() == "created"
        os.unlink(c.fifo_path)
        assert c.status() == "running"
        st = c.oci_state()
        assert st["pid"] == p.pid and st["status"] == "running"
        assert set(st) == {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                           "owner"}
        # pid reuse guard: a different start time means the init is gone
        c.save(_state("c1", p.pid, 1))
        assert c.status() == "stopped" and c.oci_state()["pid"] == 0
    finally:
        p.kill()
        p.wait()


def test_zombie_is_stopped(tmp_path):
    p = subprocess.Popen(["true"])
    c = Container(str(tmp_path), "z")
    c.make_dir()
    start = proc_start_time(p.pid)
    import time
    time.sleep(0.2)   # let it exit; it stays a zombie until we wait
    c.save(_state("z", p.pid, start or 0))
    assert c.status() == "stopped"
    p.wait()


def test_id_in_use_and_not_found(tmp_path):
    c = Container(str(tmp_path), "dup")
    c.make_dir()
    c.save(_state("dup", 0, 0))
    with pytest.raises(ContainerExists):
        Container(str(tmp_path), "dup").make_dir()
    c.remove_dir()
    c.unlock()
    assert os.listdir(tmp_path) == []
    with pytest.raises(ContainerNotFound):
        Container(str(tmp_path), "dup").lock()


def test_list_ids_skips_half_made_dirs(tmp_path):
    c = Container(str(tmp_path), "a")
    c.make_dir()
    c.save(_state("a", 0, 0))
    os.mkdir(tmp_path / "b")
    assert list_ids(str(tmp_path)) == ["a"]
    assert json.load(open(tmp_path / "a" / "state.json"))["id"] == "a"
