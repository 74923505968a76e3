#!/usr/bin/env python3
"""Build a single-layer OCI image archive (oci-layout + index.json + blobs) from a
rootfs directory, without any registry. Usage:
  mkoci.py ROOTFS_DIR REF OUT_TAR --entrypoint JSON --cmd JSON"""
import argparse, gzip, hashlib, io, json, os, tarfile, time

def add_blob(blobs, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)

def layer_tar(rootfs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                arc = os.path.relpath(full, rootfs)
                ti = t.gettarinfo(full, arcname=arc)
                ti.uid = ti.gid = 0; ti.uname = ti.gname = ""; ti.mtime = 0
                if ti.isreg():
                    with open(full, "rb") as f:
                        t.addfile(ti, f)
                else:
                    t.addfile(ti)
    return buf.getvalue()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rootfs"); ap.add_argument("ref"); ap.add_argument("out")
    ap.add_argument("--entrypoint", default="null"); ap.add_argument("--cmd", default="null")
    a = ap.parse_args()
    work = a.out + ".d"
    os.system(f"rm -rf '{work}'")
    blobs = os.path.join(work, "blobs", "sha256"); os.makedirs(blobs)
    raw = layer_tar(a.rootfs)
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    gz = gzip.compress(raw, mtime=0)
    layer_digest, layer_size = add_blob(blobs, gz)
    cfg = {
        "created": "1970-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Entrypoint": json.loads(a.entrypoint), "Cmd": json.loads(a.cmd),
                   "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "mkoci.py"}],
    }
    cfg_digest, cfg_size = add_blob(blobs, json.dumps(cfg, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cfg_digest, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer_size}],
    }
    man_digest, man_size = add_blob(blobs, json.dumps(manifest, sort_keys=True).encode())
    tag = a.ref.rsplit(":", 1)[1] if ":" in a.ref.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man_digest, "size": man_size,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": a.ref,
                            "org.opencontainers.image.ref.name": tag},
        }],
    }
    with open(os.path.join(work, "index.json"), "w") as f: json.dump(index, f)
    with open(os.path.join(work, "oci-layout"), "w") as f: json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with tarfile.open(a.out, "w") as t:
        for n in ["oci-layout", "index.json", "blobs"]:
            t.add(os.path.join(work, n), arcname=n)
    os.system(f"rm -rf '{work}'")
    print(f"{a.out}: {a.ref} manifest={man_digest} layer={layer_size}B")

if __name__ == "__main__":
    main()
