"""A built disk delivered in each target's native format, every output verified, and the
build's manifest.json: what each file is and how each target registers it.

Verification is not optional: each output is read back by the toolkit's `check` and compared,
guest byte by guest byte, with the built disk; a bzip2-compressed VHD is decompressed again and
its digest compared with the VHD it was made from.
"""

from __future__ import annotations

import bz2
import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from glasspane.errors import BuildFailed
from glasspane.images.base import WriteOptions
from glasspane.images.check import check_image
from glasspane.images.compare import compare_images
from glasspane.images.convert import StartFn, convert
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.templates.spec import Output, TemplateSpec

CHUNK = 1 << 20
Step = Callable[[str], None]


@dataclass
class ExportedOutput:
    name: str
    format: str
    file: str
    virtual_size: int
    file_size: int
    sha256: str
    compression: str | None
    verified: list[str]
    register: dict[str, Any] = field(default_factory=dict)


def sha256_of(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


def _options(spec: TemplateSpec, output: Output) -> WriteOptions:
    return WriteOptions(compress=output.compress == "zlib",
                        vm_name=output.vm_name or spec.name,
                        vcpus=output.vcpus or spec.resources.cpus,
                        memory_mib=output.memory_mib or spec.resources.memory_mib)


def _verify(disk: Path, path: Path, output: Output, log_path: str) -> list[str]:
    report = check_image(str(path))
    if not report.ok:
        problem = report.problems[0]
        raise BuildFailed(f"{path.name} fails its check: {problem.structure}: "
                          f"{problem.message}", step=f"outputs.{output.name}", log=log_path)
    for result in compare_images(str(disk), str(path), references=FOLLOW_ANYWHERE):
        if not result.identical:
            raise BuildFailed(f"{path.name} does not hold the built disk: "
                              f"{result.describe()}", step=f"outputs.{output.name}",
                              log=log_path)
    return ["check", "content identical to the built disk"]


def _bzip2(vhd: Path, target: Path, start: StartFn, output: Output, log_path: str) -> None:
    """Compress `vhd` to `target` (a temporary name the caller renames), then decompress it
    again and compare digests."""
    size = vhd.stat().st_size
    progress = start(size, f"{target.name} (bzip2)")
    digest = hashlib.sha256()
    compressor = bz2.BZ2Compressor(9)
    with vhd.open("rb") as source, target.open("wb") as sink:
        while block := source.read(CHUNK):
            digest.update(block)
            sink.write(compressor.compress(block))
            progress(len(block))
        sink.write(compressor.flush())
    again = hashlib.sha256()
    progress = start(size, f"{target.name} (verify)")
    with bz2.open(target, "rb") as unpacked:
        while block := unpacked.read(CHUNK):
            again.update(block)
            progress(len(block))
    if again.hexdigest() != digest.hexdigest():
        raise BuildFailed(f"{target.name} does not decompress to the VHD it was made from",
                          step=f"outputs.{output.name}", log=log_path)


def export_output(disk: Path, spec: TemplateSpec, output: Output, directory: Path,
                  start: StartFn, log_path: str) -> ExportedOutput:
    """Write and verify one output in `directory` (the build's staging directory)."""
    final = directory / output.filename(spec.name)
    image = directory / (spec.name + "." + output.format) if output.compress == "bz2" \
        else final
    # The built disk is the build VM's volume, a linked clone: its backing file is the
    # hypervisor's own (the temporary template glasspane imported), read where it is.
    written = convert(str(disk), str(image), to=output.format, options=_options(spec, output),
                      sync=False, overwrite=True, start=start, references=FOLLOW_ANYWHERE)
    verified = _verify(disk, image, output, log_path)
    if output.compress == "bz2":
        part = directory / f".{final.name}.part"
        _bzip2(image, part, start, output, log_path)
        os.replace(part, final)
        image.unlink()
        verified.append("bzip2 round trip")
    return ExportedOutput(
        output.name, output.format, final.name, written[0].virtual_size, final.stat().st_size,
        sha256_of(final, start(final.stat().st_size, f"{final.name} (sha256)")),
        output.compress, verified, registration_hints(spec, output, final.name))


def registration_hints(spec: TemplateSpec, output: Output, filename: str) -> dict[str, Any]:
    """What each target needs to register the file (its own words for format and
    hypervisor), so a pipeline can pass them on without knowing each platform."""
    vm = {"name_label": output.vm_name or spec.name,
          "VCPUs_max": output.vcpus or spec.resources.cpus,
          "memory_static_max_mib": output.memory_mib or spec.resources.memory_mib}
    if output.format == "xva":
        return {"xenserver": {"command": f"xe vm-import filename={filename}",
                              "api": "PUT /import", **vm}}
    if output.format == "vhd":
        return {"cloudstack": {"format": "VHD", "hypervisor": "XenServer",
                               "compressed": output.compress == "bz2"},
                "xenserver": {"api": "PUT /import_raw_vdi?format=vhd"}}
    if output.format == "qcow2":
        return {"openstack": {"disk_format": "qcow2", "container_format": "bare"},
                "cloudstack": {"format": "QCOW2", "hypervisor": "KVM"},
                "proxmox": {"command": f"qm disk import VMID {filename} STORAGE"}}
    if output.format == "ova":
        return {"vmware": {"command": f"ovftool {filename} vi://HOST/"},
                "cloudstack": {"format": "OVA", "hypervisor": "VMware"}}
    return {"openstack": {"disk_format": "raw", "container_format": "bare"},
            "cloudstack": {"format": "RAW", "hypervisor": "KVM"}}


def manifest(spec: TemplateSpec, built_at: str, seconds: float, outputs: list[ExportedOutput],
             boot: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "manifest_version": 1,
        "template": spec.name,
        "description": spec.description,
        "source": spec.source.describe(),
        "spec": spec.path.name,
        "spec_sha256": spec.digest,
        "variables": spec.variables,
        "built_at": built_at,
        "build_seconds": round(seconds, 1),
        "resources": {"cpus": spec.resources.cpus, "memory_mib": spec.resources.memory_mib,
                      "disk_gib": spec.resources.disk_gib},
        "generalized": spec.generalize,
        "provisioners": [p.where for p in spec.provisioners],
        "boot": boot,
        "outputs": [asdict(o) for o in outputs],
    }
