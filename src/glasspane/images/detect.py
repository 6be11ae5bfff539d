"""Which format a file is, and opening it: by content for inputs, by extension for outputs."""

from __future__ import annotations

import os

from glasspane.errors import UnsupportedFeature, UsageError
from glasspane.images.base import DiskImage
from glasspane.images.source import ByteSource
from glasspane.images.vm import VmImage

DISK_FORMATS = ("raw", "vhd", "qcow2", "vmdk")
VM_FORMATS = ("xva", "ova")
ALL_FORMATS = DISK_FORMATS + VM_FORMATS
_EXTENSIONS = {".raw": "raw", ".img": "raw", ".bin": "raw", ".vhd": "vhd", ".qcow2": "qcow2",
               ".qcow": "qcow2", ".vmdk": "vmdk", ".xva": "xva", ".ova": "ova"}


def format_from_extension(path: str) -> str | None:
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower())


def probe(src: ByteSource) -> str:
    """The format of `src` from its content."""
    head = src.pread(0, min(src.size, 1024), "file header")
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    if head[:4] == b"KDMV":
        return "vmdk"
    if head.startswith(b"# Disk DescriptorFile"):
        raise UnsupportedFeature("this is a VMDK descriptor file; convert the extent file it "
                                 "names, or a monolithic VMDK", path=src.path)
    if head[:8] == b"conectix":
        return "vhd"
    if len(head) >= 512 and head[257:262] == b"ustar":
        name = head[:100].split(b"\0", 1)[0]
        if name == b"ova.xml":
            return "xva"
        return "ova"
    if src.size >= 512 and src.pread(src.size - 512, 8, "VHD footer") == b"conectix":
        return "vhd"
    return "raw"


def open_disk_source(src: ByteSource, fmt: str | None = None, depth: int = 0) -> DiskImage:
    fmt = fmt or probe(src)
    try:
        if fmt == "raw":
            from glasspane.images.raw import RawImage
            return RawImage(src, src.size)
        if fmt == "vhd":
            from glasspane.images.vhd import VhdImage
            return VhdImage(src, depth)
        if fmt == "qcow2":
            from glasspane.images.qcow2 import Qcow2Image
            return Qcow2Image(src, depth)
        if fmt == "vmdk":
            from glasspane.images.vmdk import VmdkImage
            return VmdkImage(src)
    except BaseException:
        src.close()
        raise
    if fmt in VM_FORMATS:
        raise UsageError(f"{src.path} is an {fmt.upper()} (a whole VM), not a single disk")
    raise UsageError(f"unknown disk format {fmt!r} (one of {', '.join(ALL_FORMATS)})")


def open_disk(path: str, fmt: str | None = None, depth: int = 0) -> DiskImage:
    return open_disk_source(ByteSource.open(path), fmt, depth)


def open_image(path: str, fmt: str | None = None) -> DiskImage | VmImage:
    """Open a single disk or a whole-VM archive."""
    src = ByteSource.open(path)
    try:
        fmt = fmt or probe(src)
        if fmt == "xva":
            from glasspane.images.xva import XvaArchive
            return XvaArchive(src).vm()
        if fmt == "ova":
            from glasspane.images.ova import OvaArchive
            return OvaArchive(src).vm()
    except BaseException:
        src.close()
        raise
    return open_disk_source(src, fmt)


def require_format(name: str) -> str:
    name = name.lower()
    if name not in ALL_FORMATS:
        raise UsageError(f"unknown format {name!r} (one of {', '.join(ALL_FORMATS)})")
    return name

