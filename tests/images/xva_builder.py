"""Builds XVAs for tests the way XAPI's exporter lays them out, with Python's tarfile, so the
reader is tested against an archive its own writer did not make."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from glasspane.images.vm import VmSettings
from glasspane.images.xva_meta import build_ova_xml


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build_xva(path: Path, disks: list[tuple[int, list[tuple[int, bytes]]]],
              settings: VmSettings | None = None, ova_xml: bytes | None = None,
              checksum: str = "sha1", extra_members: list[tuple[str, bytes]] = ()) -> None:
    """`disks`: (virtual size, [(chunk number, data)]) per disk, written as Ref:100, Ref:101..."""
    settings = settings or VmSettings("built", 2, 512)
    xml = ova_xml if ova_xml is not None else build_ova_xml(settings, [d[0] for d in disks])
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        add(tar, "ova.xml", xml)
        for name, data in extra_members:
            add(tar, name, data)
        for index, (_, chunks) in enumerate(disks):
            for number, data in chunks:
                name = f"Ref:{100 + index}/{number:08d}"
                add(tar, name, data)
                if checksum == "sha1":
                    add(tar, name + ".checksum", hashlib.sha1(data).hexdigest().encode())
                else:
                    import xxhash
                    add(tar, name + ".xxhash", b"%016X" % xxhash.xxh64_intdigest(data))
