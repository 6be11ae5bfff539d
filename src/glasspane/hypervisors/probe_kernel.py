"""The payload the acceleration probe boots: a stock Debian kernel of the guest image's flavour.

The probe must never call KVM good without having seen a guest run under it, so a kernel is
always at hand: `make setup` fetches one with `python -m glasspane.hypervisors.probe_kernel`
(`apt-get download` of the versioned linux-image package, then only boot/vmlinuz-* taken out
of it with dpkg-deb), into the machine's cache keyed by the package's version.  Where none was
fetched, a Debian guest image's kernel serves too.

Not here: booting the payload or judging the verdict (accel.py).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from glasspane.errors import CommandFailed, UsageError
from glasspane.process import DEVNULL, require, run, spawn
from glasspane.settings import machine_cache_dir

ENV_KERNEL = "GLASSPANE_PROBE_KERNEL"
# The guest image's kernel metapackage (guests/debian_image.py): the same flavour is probed.
METAPACKAGE = "linux-image-amd64"
_VERSIONED = re.compile(r"\b(linux-image-[0-9][^\s,()]*-amd64)\b")


@dataclass(frozen=True)
class Payload:
    kernel: Path
    label: str  # how reasons name it: never an absolute path


def kernels_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or machine_cache_dir()) / "probe-kernel"


def find_payload(cache_dirs: tuple[Path, ...] = ()) -> Payload | None:
    """GLASSPANE_PROBE_KERNEL, else the newest fetched kernel, else a Debian guest image's
    kernel; the machine's cache first, then `cache_dirs` (a glasspane's own cache)."""
    named = os.environ.get(ENV_KERNEL)
    if named:
        if not Path(named).is_file():
            raise UsageError(f"{ENV_KERNEL} names no file",
                             hint="point it at a Linux kernel (a vmlinuz), or unset it")
        return Payload(Path(named), f"the kernel {ENV_KERNEL} names")
    places = (machine_cache_dir(), *[d for d in cache_dirs if d != machine_cache_dir()])
    for place in places:
        fetched = _newest(kernels_dir(place).glob("*/vmlinuz"))
        if fetched:
            return Payload(fetched, f"Debian's {fetched.parent.name.replace('_', ' ')}")
    for place in places:
        imaged = _newest((place / "guest-images").glob("debian-*/vmlinuz"))
        if imaged:
            return Payload(imaged, f"the kernel of guest image {imaged.parent.name}")
    return None


def _newest(paths: Iterable[Path]) -> Path | None:
    found = [p for p in paths if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def fetch_kernel(cache_dir: Path | None = None) -> Payload:
    """The kernel of Debian's current versioned linux-image package for METAPACKAGE, fetched
    into `cache_dir` (the machine's cache) unless already there.  Raises CommandFailed when
    apt cannot name or download it."""
    package = _versioned_package()
    version = _field(package, "Version")
    home = kernels_dir(cache_dir) / f"{package}_{version}"
    kernel = home / "vmlinuz"
    if not kernel.is_file():
        home.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=home.parent) as work:
            _download_and_extract(package, version, Path(work))
            shutil.rmtree(home, ignore_errors=True)
            os.replace(Path(work) / "out", home)
    return Payload(kernel, f"Debian's {package} {version}")


def _field(package: str, name: str) -> str:
    apt_cache = require("apt-cache", "apt")
    text = run([apt_cache, "show", "--no-all-versions", package],
               f"reading {package} from apt's package lists", timeout=60)
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return line.partition(":")[2].strip()
    raise CommandFailed(f"{package} has no {name} field", command=f"apt-cache show {package}",
                        hint="run `apt-get update`")


def _versioned_package() -> str:
    match = _VERSIONED.search(_field(METAPACKAGE, "Depends"))
    if not match:
        raise CommandFailed(f"{METAPACKAGE} depends on no versioned kernel package",
                            command=f"apt-cache show {METAPACKAGE}")
    return match.group(1)


def _download_and_extract(package: str, version: str, work: Path) -> None:
    apt_get = require("apt-get", "apt")
    dpkg_deb = require("dpkg-deb", "dpkg")
    run([apt_get, "download", "-q", f"{package}={version}"], f"downloading {package} {version}",
        cwd=str(work), timeout=1800, hint="run `apt-get update`")
    debs = list(work.glob("*.deb"))
    if not debs:
        raise CommandFailed(f"downloading {package} {version} left no package file",
                            command="apt-get download", hint="run `apt-get update`")
    out = work / "out"
    out.mkdir()
    # The package holds ~400 MB of modules: stream its filesystem and keep only the kernel.
    with spawn([dpkg_deb, "--fsys-tarfile", str(debs[0])], f"unpacking {package}",
               timeout=600, stderr=DEVNULL) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as tar:
            for member in tar:
                if member.isfile() and re.fullmatch(r"\./boot/vmlinuz-[^/]+", member.name):
                    source = tar.extractfile(member)
                    assert source is not None
                    with (out / "vmlinuz").open("wb") as dest:
                        shutil.copyfileobj(source, dest)
        proc.stdout.read()  # let dpkg-deb finish writing rather than die of a broken pipe
        proc.finish()
    if not (out / "vmlinuz").is_file():
        raise CommandFailed(f"{package} holds no boot/vmlinuz-*",
                            command=f"dpkg-deb --fsys-tarfile {debs[0].name}")


def main() -> int:
    """`make setup`: fetch the probe kernel, then say what the probe decides (once per boot).
    Exit status 1 when no kernel could be fetched (apt's lists may be missing)."""
    from glasspane.hypervisors.accel import probe_acceleration
    fetched = True
    try:
        print(f"probe kernel: {fetch_kernel().label}")
    except CommandFailed as exc:
        print(f"probe kernel: not fetched: {exc}", file=sys.stderr)
        fetched = False
    verdict = probe_acceleration(fetch=False)
    print(f"acceleration: {verdict.kind}: {verdict.reason}")
    return 0 if fetched else 1


if __name__ == "__main__":
    sys.exit(main())
