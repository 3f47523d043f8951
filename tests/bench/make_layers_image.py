#!/usr/bin/env python3
"""Writes an OCI image layout with LAYERS uncompressed tar layers of MIB MiB
each (one file /data/layer<n> of random bytes per layer, so every layer blob
is unique) for tests/bench/cri_pull_bench.sh.

Usage: make_layers_image.py LAYOUT_DIR TAG LAYERS MIB
Layers are plain tars (media type ...layer.v1.tar): a host pull then pays
download and unpack but no decompression, the overlayfs pull's best case.
"""
import hashlib
import io
import json
import os
import sys
import tarfile

CHUNK = 1 << 20


def write_blob(layout, data_or_path):
    """Stores bytes (or moves a file) under blobs/sha256; returns (digest, size)."""
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    if isinstance(data_or_path, bytes):
        digest = hashlib.sha256(data_or_path).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data_or_path)
        return "sha256:" + digest, len(data_or_path)
    h = hashlib.sha256()
    with open(data_or_path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    size = os.path.getsize(data_or_path)
    os.replace(data_or_path, os.path.join(blobs, h.hexdigest()))
    return "sha256:" + h.hexdigest(), size


class RandomReader(io.RawIOBase):
    """`size` bytes from os.urandom, read in chunks (no whole-layer buffer)."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left, CHUNK)
        if n <= 0:
            return 0
        b[:n] = os.urandom(n)
        self.left -= n
        return n


def make_layer(layout, n, mib):
    tmp = os.path.join(layout, "layer.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        if n == 1:
            d = tarfile.TarInfo("data")
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(d)
        info = tarfile.TarInfo("data/layer%d" % n)
        info.size, info.mode = mib * CHUNK, 0o644
        tar.addfile(info, io.BufferedReader(RandomReader(info.size), CHUNK))
    return write_blob(layout, tmp)


def main():
    layout, tag, layers, mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(layout, exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    descs = []
    for n in range(1, layers + 1):
        digest, size = make_layer(layout, n, mib)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                      "digest": digest, "size": size})
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]},
    }).encode()
    cdigest, csize = write_blob(layout, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cdigest, "size": csize},
        "layers": descs,
    }).encode()
    mdigest, msize = write_blob(layout, manifest)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": mdigest, "size": msize,
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)


if __name__ == "__main__":
    main()
