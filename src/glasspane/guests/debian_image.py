"""A Debian guest image built from Debian's package registry alone, with mmdebstrap.

The recipe (suite, mirror, packages, size, the customizations) is hashed; the image is built
once per machine into the cache directory under that hash and reused until the recipe changes.
It boots directly from its kernel and initrd (kept beside the disk): the disk is one ext4
filesystem labelled `root`, with no partition table and no bootloader, which needs no loop
device to build and lets cloud-init grow the filesystem to any disk size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from glasspane.enums import VmDefaults
from glasspane.errors import CommandFailed
from glasspane.images.base import WriteOptions
from glasspane.images.convert import StartFn, convert, no_progress
from glasspane.process import require, run

RECIPE_VERSION = 1
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("linux-image-amd64", "systemd-sysv", "udev", "dbus", "openssh-server",
            "cloud-init", "cloud-guest-utils", "podman", "python3", "ifupdown",
            "isc-dhcp-client", "netbase", "iproute2", "sudo")
KERNEL_CMDLINE = VmDefaults.CMDLINE  # part of the recipe: a change rebuilds the image

# Run inside the new root by mmdebstrap: a generalized image, configured for NoCloud seeds.
CLOUD_CFG = """\
datasource_list: [NoCloud, None]
locale: C.UTF-8
"""
CUSTOMIZE = (
    'echo "LABEL=root / ext4 defaults 0 1" > "$1/etc/fstab"',
    f'printf %s {shlex.quote(CLOUD_CFG)} > "$1/etc/cloud/cloud.cfg.d/90-glasspane.cfg"',
    'rm -f "$1"/etc/ssh/ssh_host_*',
    ': > "$1/etc/machine-id"',
    'rm -rf "$1"/var/lib/cloud/* "$1"/var/log/*.log "$1"/var/cache/apt/archives/*.deb',
)


@dataclass(frozen=True)
class GuestImage:
    disk: Path      # qcow2
    kernel: Path
    initrd: Path
    cmdline: str
    recipe_hash: str


def recipe(suite: str = "bookworm", size: str = "3G", extra: tuple[str, ...] = ()
           ) -> dict[str, object]:
    # Extra packages are sorted and deduplicated: the same set is the same image.
    packages = list(PACKAGES) + sorted(set(extra) - set(PACKAGES))
    return {"version": RECIPE_VERSION, "suite": suite, "mirror": MIRROR,
            "packages": packages, "size": size, "customize": list(CUSTOMIZE),
            "cloud_cfg": CLOUD_CFG, "cmdline": KERNEL_CMDLINE}


def recipe_hash(spec: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def debian_image(cache_dir: Path, suite: str = "bookworm", start: StartFn = no_progress,
                 extra: tuple[str, ...] = ()) -> GuestImage:
    """The cached image for the recipe (with `extra` packages beside the usual ones), built
    first if needed (about two minutes)."""
    spec = recipe(suite, extra=extra)
    key = recipe_hash(spec)
    home = cache_dir / "guest-images" / f"debian-{suite}-{key}"
    image = GuestImage(home / "disk.qcow2", home / "vmlinuz", home / "initrd",
                       KERNEL_CMDLINE, key)
    if (home / "recipe.json").is_file():
        return image
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".build-{key}-", dir=home.parent) as work:
        _build(spec, Path(work), start)
        shutil.rmtree(home, ignore_errors=True)
        os.replace(Path(work) / "out", home)
    return image


def _build(spec: dict[str, object], work: Path, start: StartFn) -> None:
    mmdebstrap = require("mmdebstrap", "mmdebstrap")
    mkfs = require("mkfs.ext4", "e2fsprogs")
    root, out = work / "root", work / "out"
    out.mkdir()
    hooks = [arg for step in CUSTOMIZE for arg in ("--customize-hook", step)]
    packages = [str(p) for p in spec["packages"]]  # type: ignore[attr-defined]
    run([mmdebstrap, "--quiet", "--variant=minbase", "--include=" + ",".join(packages),
         *hooks, str(spec["suite"]), str(root), str(spec["mirror"])],
        "building the Debian root filesystem", timeout=1800)
    boot = root / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    initrds = sorted(boot.glob("initrd.img-*"))
    if not kernels or not initrds:
        raise CommandFailed(f"the new root has no kernel or initrd in {boot}",
                            command="mmdebstrap")
    shutil.copy2(kernels[-1], out / "vmlinuz")
    shutil.copy2(initrds[-1], out / "initrd")
    raw = work / "disk.raw"
    run([mkfs, "-q", "-F", "-L", "root", "-d", str(root), str(raw), str(spec["size"])],
        "making the root filesystem", timeout=1800)
    shutil.rmtree(root)
    convert(str(raw), str(out / "disk.qcow2"), to="qcow2",
            options=WriteOptions(compress=True), start=start)
    raw.unlink()
    (out / "recipe.json").write_text(json.dumps(spec, indent=2, sort_keys=True))
