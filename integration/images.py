"""Offline busybox images for the real clients: no registry is reachable.

- rootfs_tar(rootfs, dest): a plain tar of a rootfs directory, owned by root,
  with fixed mtimes (what `docker import` and `podman import` take);
- oci_archive(rootfs, dest, ref): an OCI image layout archive (layer tar.gz,
  config, manifest, index.json, all content-addressed) that
  `ctr image import` takes, named `ref`.
"""
import gzip
import hashlib
import io
import json
import os
import tarfile

ENV_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MTIME = 1_700_000_000   # fixed: the same rootfs gives the same digests


def _reset(info):
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = MTIME
    return info


def _tar_bytes(rootfs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # sorted walk: tarfile.add(recursive) follows os.listdir order
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, name)
                tar.add(path, arcname=os.path.relpath(path, rootfs), recursive=False,
                        filter=_reset)
    return buf.getvalue()


def rootfs_tar(rootfs, dest):
    with open(dest, "wb") as f:
        f.write(_tar_bytes(rootfs))
    return dest


def _blob(tar, data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + digest.split(":", 1)[1])
    info.size, info.mtime = len(data), MTIME
    tar.addfile(info, io.BytesIO(data))
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _file(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), MTIME
    tar.addfile(info, io.BytesIO(data))


def oci_archive(rootfs, dest, ref):
    """Write an OCI image archive of `rootfs` named `ref` (e.g.
    docker.io/pyrunc/busybox:test) to `dest`; return dest."""
    layer = _tar_bytes(rootfs)
    gz = gzip.compress(layer, mtime=MTIME)
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": [ENV_PATH], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "pyrunc integration tests: busybox-static"}],
    }
    with tarfile.open(dest, "w") as tar:
        _file(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        layer_desc = _blob(tar, gz, "application/vnd.oci.image.layer.v1.tar+gzip")
        config_desc = _blob(tar, json.dumps(config).encode(),
                            "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": [layer_desc]}
        manifest_desc = _blob(tar, json.dumps(manifest).encode(),
                              "application/vnd.oci.image.manifest.v1+json")
        manifest_desc["annotations"] = {"io.containerd.image.name": ref,
                                        "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}
        manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
        index = {"schemaVersion": 2, "manifests": [manifest_desc]}
        _file(tar, "index.json", json.dumps(index).encode())
    return dest
