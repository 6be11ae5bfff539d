"""`image info`: what a file is, how big, what is inside, what it depends on."""

from __future__ import annotations

import os
from typing import Any

from glasspane.images.base import DiskImage
from glasspane.images.detect import open_image
from glasspane.images.references import STANDALONE, References
from glasspane.images.vm import VmImage


def disk_info(image: DiskImage) -> dict[str, Any]:
    return {
        "format": image.format_name,
        "virtual_size": image.virtual_size,
        "allocated_size": image.allocated_bytes(),
        **image.details(),
        "backing_chain": [{"path": p.path, "format": p.format_name,
                           "virtual_size": p.virtual_size} for p in image.chain()[1:]],
    }


def image_info(path: str, fmt: str | None = None,
               references: References = STANDALONE) -> dict[str, Any]:
    image = open_image(path, fmt, references)
    try:
        info: dict[str, Any] = {"path": path, "file_size": os.path.getsize(path)}
        if isinstance(image, VmImage):
            info.update({
                "format": image.format_name,
                "virtual_size": sum(d.image.virtual_size for d in image.disks),
                "vm": {"name": image.name, "vcpus": image.vcpus,
                       "memory_mib": image.memory_mib},
                "disks": [{"index": i, "name": d.name, **disk_info(d.image)}
                          for i, d in enumerate(image.disks)],
                **image.details,
            })
        else:
            info.update(disk_info(image))
        return info
    finally:
        image.close()
