"""The container's filesystem: read-only root, --no-pivot, masked and read-only
paths, read-only bind mounts, and mount targets that are symlinks pointing
out of the rootfs (they must resolve inside it; the host stays untouched)."""
import os

import pytest


@pytest.fixture
def rt(pyrunc, make_runtime):
    return make_runtime(pyrunc, name="pyrunc")


@pytest.fixture(params=["pyrunc", "runc"])
def any_rt(request, make_runtime):
    return make_runtime(request.getfixturevalue(request.param), name=request.param)


def _run(rt, cid, bundle, *flags):
    r = rt.run(cid, bundle, *flags)
    return r.returncode, r.stdout, r.stderr


def _writable(path):
    return f'if touch {path} 2>/dev/null; then echo "{path} rw"; else echo "{path} ro"; fi'


@pytest.mark.parametrize("readonly", [True, False])
def test_root_readonly(rt, bundle_factory, container_id, readonly):
    bundle = bundle_factory(args=["sh", "-c", f"{_writable('/newfile')}; {_writable('/tmp/x')}"],
                            config_overrides={"root": {"readonly": readonly}})
    code, out, err = _run(rt, container_id(), bundle)
    assert code == 0, err
    assert f"/newfile {'ro' if readonly else 'rw'}" in out.splitlines()
    assert os.path.exists(os.path.join(bundle.rootfs, "newfile")) == (not readonly)


def test_no_pivot(rt, bundle_factory, container_id):
    bundle = bundle_factory(args=["sh", "-c", "cat /marker; ls /work /usr/sbin/runc 2>&1 | "
                                              "head -1; echo pid $$"],
                            files={"marker": "inside\n"})
    code, out, err = _run(rt, container_id(), bundle, "--no-pivot")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "inside"
    assert "No such file or directory" in lines[1], "the host's files are visible"
    assert lines[2] == "pid 1"


def test_masked_and_readonly_paths(rt, bundle_factory, container_id):
    script = ("cat /etc/secret; echo rc=$?; ls /opt/secretdir | wc -l; "
              "echo x > /opt/data/f 2>/dev/null && echo data-rw || echo data-ro; "
              "cat /opt/data/f; echo y > /proc/sys/kernel/hostname 2>/dev/null && "
              "echo procsys-rw || echo procsys-ro")
    bundle = bundle_factory(args=["sh", "-c", script], config_overrides={
        "root": {"readonly": False},
        "linux": {"maskedPaths": ["/etc/secret", "/opt/secretdir", "/no/such/path"],
                  "readonlyPaths": ["/opt/data", "/proc/sys", "/no/such/ro"]}},
        files={"etc/secret": "s3cret\n", "opt/secretdir/a": "x\n", "opt/data/f": "d\n"})
    code, out, err = _run(rt, container_id(), bundle)
    assert code == 0, err
    assert out.splitlines() == ["rc=0", "0", "data-ro", "d", "procsys-ro"], out
    assert "s3cret" not in out


def test_bind_mount_readonly(rt, bundle_factory, container_id, tmp_path):
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "f").write_text("from-host\n")
    bundle = bundle_factory(args=["sh", "-c", "cat /data/f; echo evil > /data/f 2>/dev/null "
                                              "&& echo wrote || echo refused; touch /data/new "
                                              "2>/dev/null || echo refused-new"])
    bundle.config["mounts"].append({"destination": "/data", "type": "bind",
                                    "source": str(host), "options": ["rbind", "ro"]})
    bundle.write_config()
    code, out, err = _run(rt, container_id(), bundle)
    assert code == 0, err
    assert out.splitlines() == ["from-host", "refused", "refused-new"]
    assert (host / "f").read_text() == "from-host\n"
    assert sorted(os.listdir(host)) == ["f"]


@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_symlinked_mount_target_stays_inside(any_rt, bundle_factory, container_id, tmp_path,
                                             link):
    """CVE-2019-18837 family: /escape -> a host dir; mounting on /escape must
    land inside the rootfs, never on the host directory."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("host data\n")
    bundle = bundle_factory(args=["sh", "-c", "touch /escape/made-in-container; ls /escape"])
    root = bundle.rootfs
    # relative: ../../victim from the rootfs is the victim on the host
    target = str(victim) if link == "absolute" else os.path.relpath(str(victim), root)
    os.symlink(target, os.path.join(root, "escape"))
    bundle.config["root"]["readonly"] = False
    bundle.config["mounts"].append({"destination": "/escape", "type": "tmpfs",
                                    "source": "tmpfs", "options": ["size=1m"]})
    bundle.write_config()
    with open("/proc/self/mountinfo") as f:
        before = f.read()
    r = any_rt.run(container_id(), bundle)
    # either the mount is placed inside the rootfs or the runtime refuses:
    # the host directory is what must not change
    assert sorted(os.listdir(victim)) == ["keep"], f"{any_rt.name} wrote through the symlink"
    assert (victim / "keep").read_text() == "host data\n"
    with open("/proc/self/mountinfo") as f:
        assert str(victim) not in f.read().replace(before, "")
    if r.returncode == 0:
        assert r.stdout.split() == ["made-in-container"], r.stdout


def test_dotdot_mount_destination_stays_inside(rt, bundle_factory, container_id):
    """A bind mount whose destination climbs out with .. stays in the rootfs."""
    bundle = bundle_factory(args=["sh", "-c", "ls /outside-dir 2>&1 | head -1"])
    bundle.config["mounts"].append({"destination": "/../../../../outside-dir", "type": "tmpfs",
                                    "source": "tmpfs"})
    bundle.config["root"]["readonly"] = False
    bundle.write_config()
    r = rt.run(container_id(), bundle)
    assert not os.path.exists("/outside-dir"), "mount escaped to the host root"
    if r.returncode == 0:
        assert os.path.isdir(os.path.join(bundle.rootfs, "outside-dir"))


@pytest.mark.parametrize("propagation", ["rshared", "shared", "rslave", "rprivate", "slave"])
def test_root_propagation(any_rt, bundle_factory, container_id, propagation):
    """With rslave/rprivate no mount is left shared and pyrunc skips the parent
    mount check; with (r)shared the rootfs's parent mount is shared and must
    be made private first, or pivot_root refuses it.  Same outcome as runc."""
    bundle = bundle_factory(args=["sh", "-c", "echo pid $$"],
                            config_overrides={"linux": {"rootfsPropagation": propagation}})
    code, out, err = _run(any_rt, container_id(), bundle)
    assert (code, out.strip()) == (0, "pid 1"), err
