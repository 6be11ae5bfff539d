"""`image check`: structural validity and checksums, as a list of findings."""

from __future__ import annotations

from dataclasses import dataclass, field

from glasspane.errors import FormatError, ImageError
from glasspane.images.base import Problem
from glasspane.images.detect import open_image
from glasspane.images.references import STANDALONE, References
from glasspane.images.vm import VmImage


@dataclass
class CheckReport:
    path: str
    format: str | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_image(path: str, fmt: str | None = None,
                references: References = STANDALONE) -> CheckReport:
    """Never raises for a damaged image: damage is what the report is for (a reference
    `references` refuses is a problem found, too)."""
    try:
        image = open_image(path, fmt, references)
    except FormatError as exc:
        return CheckReport(path, fmt, [Problem(exc.structure or "file", exc.message,
                                               exc.offset)])
    except ImageError as exc:
        return CheckReport(path, fmt, [Problem("file", exc.message)])
    try:
        if isinstance(image, VmImage):
            report = CheckReport(path, image.format_name)
            if image.archive_check is not None:
                report.problems += image.archive_check()
            for i, disk in enumerate(image.disks):
                report.problems += [Problem(f"disk {i} ({disk.name}): {p.structure}", p.message,
                                            p.offset) for p in disk.image.check()]
            return report
        return CheckReport(path, image.format_name, image.check())
    finally:
        image.close()
