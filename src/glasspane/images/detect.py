"""Which format a file is, and opening it: by content for inputs, by extension for outputs."""

from __future__ import annotations

import os

from glasspane.errors import FormatError, UnsupportedFeature, UsageError
from glasspane.images.base import DiskImage
from glasspane.images.references import STANDALONE, References
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


def named_format_check(src: ByteSource, detected: str) -> None:
    """Refuse a file whose name says one format and whose content is none at all: read as a
    raw disk it would be converted into garbage without a word (an empty `x.qcow2`, a VHD
    whose footer is damaged).  Content of another real format is read as what it is."""
    # A member of an archive is named `ARCHIVE[MEMBER]`: the member's own name counts.
    own = src.path[:-1].rsplit("[", 1)[-1] if src.path.endswith("]") else src.path
    named = format_from_extension(own)
    if detected == "raw" and named not in (None, "raw"):
        name = named.upper() if named != "qcow2" else named
        raise FormatError(
            f"the content is not {name}: no {name} header found (an empty or damaged file, "
            f"or another format under a {named} name)", path=src.path,
            structure=f"{name} header", offset=0,
            hint='if it really is a raw disk, say so: --from raw (in the API, "from": "raw")')


def open_disk_source(src: ByteSource, fmt: str | None = None, depth: int = 0,
                     references: References = STANDALONE) -> DiskImage:
    """The disk in `src`, in format `fmt` or the one its content shows; references to other
    files (backing files, parents) resolved by `references`."""
    try:
        if fmt is None:
            fmt = probe(src)
            named_format_check(src, fmt)
        if fmt == "raw":
            from glasspane.images.raw import RawImage
            return RawImage(src, src.size)
        if fmt == "vhd":
            from glasspane.images.vhd import VhdImage
            return VhdImage(src, depth, references)
        if fmt == "qcow2":
            from glasspane.images.qcow2 import Qcow2Image
            return Qcow2Image(src, depth, references)
        if fmt == "vmdk":
            from glasspane.images.vmdk import VmdkImage
            return VmdkImage(src)
    except BaseException:
        src.close()
        raise
    if fmt in VM_FORMATS:
        src.close()
        raise UsageError(f"{src.path} is an {fmt.upper()} (a whole VM), not a single disk")
    src.close()
    raise UsageError(f"unknown disk format {fmt!r} (one of {', '.join(ALL_FORMATS)})")


def open_disk(path: str, fmt: str | None = None, depth: int = 0,
              references: References = STANDALONE) -> DiskImage:
    return open_disk_source(ByteSource.open(path), fmt, depth, references)


def open_image(path: str, fmt: str | None = None,
               references: References = STANDALONE) -> DiskImage | VmImage:
    """Open a single disk or a whole-VM archive.  `references` says which other files a disk
    may have read through it (see images.references); the default reads none."""
    src = ByteSource.open(path)
    try:
        if fmt is None:
            fmt = probe(src)
            named_format_check(src, fmt)
        if fmt == "xva":
            from glasspane.images.xva import XvaArchive
            return XvaArchive(src).vm()
        if fmt == "ova":
            from glasspane.images.ova import OvaArchive
            return OvaArchive(src).vm()
    except BaseException:
        src.close()
        raise
    return open_disk_source(src, fmt, references=references)


def require_format(name: str) -> str:
    name = name.lower()
    if name not in ALL_FORMATS:
        raise UsageError(f"unknown format {name!r} (one of {', '.join(ALL_FORMATS)})")
    return name

