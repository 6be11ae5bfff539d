"""A small real container image made here, with no registry (none is reachable from these
machines): a docker-archive tarball (the format `docker save` writes and `docker load` /
`podman load` read) whose one layer holds Debian's static busybox, with `sh`, `httpd` and a
few other applets linked to it.  The demo's web application and the tests' containers."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static, installed by `make setup`
APPLETS = ("sh", "httpd", "echo", "cat", "sleep", "ls", "env", "wget", "ps", "top")


def _add(layer: tarfile.TarFile, name: str, data: bytes | None = None, *, mode: int = 0o644,
         link: str | None = None, directory: bool = False, mtime: int | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = int(time.time()) if mtime is None else mtime
    info.mode = mode
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif link is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = link
    else:
        info.size = len(data or b"")
    layer.addfile(info, io.BytesIO(data) if data is not None else None)


def busybox_layer(index_html: str, mtime: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for directory in ("bin", "www", "tmp", "etc"):
            _add(layer, directory, directory=True, mtime=mtime)
        _add(layer, "bin/busybox", BUSYBOX.read_bytes(), mode=0o755, mtime=mtime)
        for applet in APPLETS:
            _add(layer, f"bin/{applet}", link="busybox", mtime=mtime)
        _add(layer, "www/index.html", index_html.encode(), mtime=mtime)
        _add(layer, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", mtime=mtime)
    return buffer.getvalue()


def write_image_tarball(path: Path, tag: str, index_html: str = "hello from busybox\n",
                        command: tuple[str, ...] = ("httpd", "-f", "-v", "-p", "8080",
                                                    "-h", "/www"),
                        mtime: int | None = None) -> Path:
    """`mtime`: fixed file times make the same image the same bytes (None: now)."""
    layer = busybox_layer(index_html, mtime)
    diff_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": list(command), "Env": ["PATH=/bin"], "WorkingDir": "/",
                   "ExposedPorts": {"8080/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created_by": "glasspane tests: busybox-static"}],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag],
                            "Layers": [f"{diff_id}/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as archive:
        _add(archive, f"{diff_id}", directory=True, mtime=mtime)
        _add(archive, f"{diff_id}/layer.tar", layer, mtime=mtime)
        _add(archive, config_name, config, mtime=mtime)
        _add(archive, "manifest.json", manifest, mtime=mtime)
    return path
