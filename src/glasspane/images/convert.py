"""Any format to any format: single disks, or whole VMs (XVA <-> OVA keep the VM's name,
vCPUs, memory and every disk).  The service function the CLI (and later the API) call."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from glasspane.errors import UsageError
from glasspane.images.base import ByteSink, DiskImage, DiskWriter, ProgressFn, WriteOptions
from glasspane.images.detect import (
    DISK_FORMATS,
    VM_FORMATS,
    format_from_extension,
    open_image,
    require_format,
)
from glasspane.images.extents import Extent
from glasspane.images.output import AtomicOutputs
from glasspane.images.parallel import prefetched
from glasspane.images.references import STANDALONE, References
from glasspane.images.vm import DEFAULT_MEMORY_MIB, DEFAULT_VCPUS, VmImage, VmSettings

StartFn = Callable[[int, str], ProgressFn]


@dataclass
class ConvertedOutput:
    path: str
    format: str
    virtual_size: int
    file_size: int
    allocated: int = 0  # bytes the file occupies: less than file_size where it has holes


def writer_for(fmt: str, sink: ByteSink, size: int, options: WriteOptions) -> DiskWriter:
    if fmt == "raw":
        from glasspane.images.raw import RawWriter
        return RawWriter(sink, size, options)
    if fmt == "vhd":
        from glasspane.images.vhd import VhdWriter
        return VhdWriter(sink, size, options)
    if fmt == "qcow2":
        from glasspane.images.qcow2 import Qcow2Writer
        return Qcow2Writer(sink, size, options)
    if fmt == "vmdk":
        from glasspane.images.vmdk import VmdkWriter
        return VmdkWriter(sink, size, options)
    raise UsageError(f"no disk writer for {fmt!r}")


def no_progress(total: int, label: str) -> ProgressFn:
    return lambda n: None


def convert(src: str, dst: str, *, to: str | None = None, src_format: str | None = None,
            disk: int | None = None, options: WriteOptions | None = None,
            overwrite: bool = False, sync: bool = True,
            start: StartFn = no_progress,
            references: References = STANDALONE) -> list[ConvertedOutput]:
    """Convert `src` into `dst`; returns what was written.  `start(total, label)` is called
    once with the number of guest bytes to process and returns the progress callback;
    `references` says which backing files or parents `src` may have read."""
    options = options or WriteOptions()
    fmt = require_format(to) if to else format_from_extension(dst)
    if fmt is None:
        raise UsageError(f"cannot tell the output format from {dst!r}",
                         hint="name it .raw/.vhd/.qcow2/.vmdk/.xva/.ova or pass --to FORMAT")
    if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
        raise UsageError(f"{dst} is the source itself")
    image = open_image(src, src_format, references)
    try:
        with AtomicOutputs(overwrite, sync) as outputs:
            if isinstance(image, VmImage):
                results = _convert_vm(image, dst, fmt, disk, options, outputs, start)
            elif disk not in (None, 0):
                raise UsageError(f"{src} is a single disk: --disk {disk} does not exist")
            else:
                results = _convert_disk(image, dst, fmt, options, outputs, start,
                                        os.path.splitext(os.path.basename(src))[0])
    finally:
        image.close()
    for r in results:
        st = os.stat(r.path)
        r.file_size, r.allocated = st.st_size, st.st_blocks * 512
    return results


def _convert_disk(image: DiskImage, dst: str, fmt: str, options: WriteOptions,
                  outputs: AtomicOutputs, start: StartFn, stem: str) -> list[ConvertedOutput]:
    sink = outputs.create(dst)
    progress = start(image.virtual_size, os.path.basename(dst))
    if fmt in VM_FORMATS:
        settings = VmSettings(options.vm_name or stem, options.vcpus or DEFAULT_VCPUS,
                              options.memory_mib or DEFAULT_MEMORY_MIB, [stem])
        _write_vm(fmt, sink, settings, [(image.virtual_size, _stream(image))], progress,
                  options)
        return [ConvertedOutput(dst, fmt, image.virtual_size, 0)]
    writer_for(fmt, sink, image.virtual_size, options).write(_stream(image), progress)
    return [ConvertedOutput(dst, fmt, image.virtual_size, 0)]


def _convert_vm(vm: VmImage, dst: str, fmt: str, disk: int | None, options: WriteOptions,
                outputs: AtomicOutputs, start: StartFn) -> list[ConvertedOutput]:
    disks = vm.disks
    if disk is not None:
        if not 0 <= disk < len(disks):
            raise UsageError(f"{vm.path} has {len(disks)} disk(s): --disk {disk} does not exist",
                             hint=f"use 0..{len(disks) - 1}; see `glasspane image info`")
        disks = [disks[disk]]
    if not disks:
        raise UsageError(f"{vm.path} has no disks to convert")
    total = sum(d.image.virtual_size for d in disks)
    if fmt in VM_FORMATS:
        sink = outputs.create(dst)
        progress = start(total, os.path.basename(dst))
        settings = VmSettings(options.vm_name or vm.name, options.vcpus or vm.vcpus,
                              options.memory_mib or vm.memory_mib, [d.name for d in disks])
        _write_vm(fmt, sink, settings,
                  [(d.image.virtual_size, _stream(d.image)) for d in disks], progress, options)
        return [ConvertedOutput(dst, fmt, total, 0)]
    assert fmt in DISK_FORMATS
    paths = [dst] if len(disks) == 1 else [_numbered(dst, i) for i in range(len(disks))]
    sinks = [outputs.create(path) for path in paths]
    progress = start(total, os.path.basename(dst))
    results = []
    for path, sink, d in zip(paths, sinks, disks, strict=True):
        writer_for(fmt, sink, d.image.virtual_size, options).write(_stream(d.image), progress)
        results.append(ConvertedOutput(path, fmt, d.image.virtual_size, 0))
    return results


def _stream(image: DiskImage) -> Iterable[Extent]:
    """The image's extents, read ahead in a thread so reading overlaps writing."""
    return prefetched(image.extents())


def _numbered(dst: str, index: int) -> str:
    stem, ext = os.path.splitext(dst)
    return f"{stem}-disk{index}{ext}"


def _write_vm(fmt: str, sink: ByteSink, settings: VmSettings,
              disks: list[tuple[int, Iterable[Extent]]], progress: ProgressFn,
              options: WriteOptions) -> None:
    if fmt == "xva":
        from glasspane.images.xva import write_xva
        write_xva(sink, settings, disks, progress, options.xva_checksum)
    else:
        from glasspane.images.ova import write_ova
        write_ova(sink, settings, disks, progress)
