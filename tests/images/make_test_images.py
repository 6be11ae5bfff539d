#!/usr/bin/env python3
"""Generate the test images: a patterned raw disk (glasspane.images.sample) and the same content
written by qemu-img in every format and sub-format it writes, plus a qcow2 overlay with a backing
file.  Usage: make_test_images.py DIR [SIZE_MIB]."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from glasspane.images.sample import write_sample

QEMU_VARIANTS = {
    "qemu-v3.qcow2": ["-O", "qcow2"],
    "qemu-v2.qcow2": ["-O", "qcow2", "-o", "compat=0.10"],
    "qemu-compressed.qcow2": ["-O", "qcow2", "-c"],
    "qemu-dynamic.vhd": ["-O", "vpc", "-o", "subformat=dynamic"],
    "qemu-fixed.vhd": ["-O", "vpc", "-o", "subformat=fixed"],
    "qemu-sparse.vmdk": ["-O", "vmdk", "-o", "subformat=monolithicSparse"],
    "qemu-stream.vmdk": ["-O", "vmdk", "-o", "subformat=streamOptimized"],
}
# Written into the overlay by qemu-io: (offset, length, byte)
OVERLAY_WRITES = [(1 << 20, 64 << 10, 0xAB), (7 << 20, 3 << 20, 0xCD)]


def qemu_img() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        raise SystemExit("qemu-img is missing: install Debian's qemu-utils (make test does)")
    return path


def make_images(directory: str, size: int) -> dict[str, str]:
    os.makedirs(directory, exist_ok=True)
    raw = os.path.join(directory, "sample.raw")
    write_sample(raw, size)
    out = {"sample.raw": raw}
    for name, args in QEMU_VARIANTS.items():
        path = os.path.join(directory, name)
        subprocess.run([qemu_img(), "convert", "-f", "raw", *args, raw, path], check=True)
        out[name] = path
    base = out["qemu-v3.qcow2"]
    overlay = os.path.join(directory, "qemu-overlay.qcow2")
    subprocess.run([qemu_img(), "create", "-q", "-f", "qcow2", "-b", os.path.basename(base),
                    "-F", "qcow2", overlay], check=True)
    for offset, length, byte in OVERLAY_WRITES:
        subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                        f"write -P {byte} {offset} {length}", overlay],
                       check=True, stdout=subprocess.DEVNULL)
    out["qemu-overlay.qcow2"] = overlay
    return out


if __name__ == "__main__":
    target = sys.argv[1]
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    for name, path in make_images(target, mib << 20).items():
        print(name, path)
