"""The demonstration job: a generated sample disk converted through every format, each result
verified against the original (by glasspane, and by qemu-img where it reads the format)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import click
from rich.console import Console
from rich.table import Table

from glasspane.cli.progress import byte_progress
from glasspane.cli.table import human
from glasspane.images.base import WriteOptions
from glasspane.images.compare import compare_images
from glasspane.images.convert import convert
from glasspane.images.sample import write_sample
from glasspane.process import call

# (source, output, options): a chain through every format, each step from the previous one.
STEPS: list[tuple[str, str, WriteOptions]] = [
    ("sample.raw", "sample.vhd", WriteOptions()),
    ("sample.vhd", "sample.qcow2", WriteOptions()),
    ("sample.qcow2", "sample-compressed.qcow2", WriteOptions(compress=True)),
    ("sample-compressed.qcow2", "sample.vmdk", WriteOptions()),
    ("sample.vmdk", "sample.xva", WriteOptions(vm_name="demo-vm", vcpus=2, memory_mib=2048)),
    ("sample.xva", "sample.ova", WriteOptions()),
    ("sample.ova", "roundtrip.raw", WriteOptions()),
]
QEMU_FORMATS = {".vhd": "vpc", ".qcow2": "qcow2", ".vmdk": "vmdk", ".raw": "raw"}


def _qemu_verdict(original: str, output: str) -> str:
    fmt = QEMU_FORMATS.get(os.path.splitext(output)[1])
    qemu_img = shutil.which("qemu-img")
    if fmt is None or qemu_img is None:
        return "-"
    result = call([qemu_img, "compare", "-q", "-f", "raw", "-F", fmt, original, output],
                  "comparing with qemu-img", timeout=600)
    return "identical" if result.returncode == 0 else f"DIFFERS (rc {result.returncode})"


def _kind(name: str) -> str:
    stem, ext = os.path.splitext(name)
    return ext[1:] + (" (compressed)" if "compressed" in stem else "")


def run_demo(workdir: str | None, size_mib: int) -> None:
    console = Console()
    workdir = workdir or tempfile.mkdtemp(prefix="glasspane-demo-")
    os.makedirs(workdir, exist_ok=True)
    original = os.path.join(workdir, "sample.raw")
    console.print(f"[bold]glasspane demo[/]: a {size_mib} MiB sample disk through every format, "
                  f"in {workdir}")
    write_sample(original, size_mib << 20)
    table = Table(title="every format, each output compared with the original disk")
    for column in ("conversion", "allocated", "seconds", "glasspane", "qemu-img"):
        table.add_column(column)
    failures = 0
    for src, dst, options in STEPS:
        src_path, dst_path = os.path.join(workdir, src), os.path.join(workdir, dst)
        began = time.monotonic()
        with byte_progress(True) as start:
            convert(src_path, dst_path, options=options, overwrite=True, start=start)
        seconds = time.monotonic() - began
        results = compare_images(original, dst_path)
        ok = all(r.identical for r in results)
        failures += not ok
        qemu = _qemu_verdict(original, dst_path)
        failures += qemu.startswith("DIFFERS")
        label = f"{_kind(src)} -> {_kind(dst)}"
        table.add_row(label, human(os.stat(dst_path).st_blocks * 512), f"{seconds:.2f}",
                      "identical" if ok else results[0].describe(), qemu)
    console.print(table)
    if failures:
        raise click.ClickException(f"{failures} verification(s) failed")
    console.print("[green]every output holds exactly the sample's content[/]")
