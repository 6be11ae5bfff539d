"""`vm export`: a VM (or one of its disks) out of its host, in any format the toolkit writes.

On XenServer/XCP-ng the pool does the reading: an XVA comes from XAPI's /export as it is, a
VHD or raw disk from /export_raw_vdi as it is; any other format is converted from the VHD the
pool sent (a temporary file beside the output: VHD is read at random offsets).  On a local
libvirt host the VM's disk file is converted directly.  The VM must not be running: a disk
read while the guest writes to it would not be a consistent image.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from glasspane.enums import PowerState
from glasspane.errors import Conflict, UsageError
from glasspane.hosts.service import host_driver
from glasspane.hypervisors.capabilities import Capability, ImageTransfer, require, supports
from glasspane.hypervisors.libvirt_driver import is_local_uri
from glasspane.images.base import WriteOptions
from glasspane.images.convert import StartFn, convert, no_progress
from glasspane.images.detect import format_from_extension, require_format
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.settings import Settings
from glasspane.templates.service import SUFFIX

XAPI_DISK_FORMATS = ("raw", "vhd")


def export_vm(settings: Settings, name: str, dest: Path, host: str = "local",
              to: str | None = None, disk: int = 0, force: bool = False,
              start: StartFn = no_progress) -> str:
    """Write VM `name` (an XVA or OVA: the whole VM; any disk format: disk `disk`) to `dest`;
    the format written."""
    fmt = require_format(to) if to else format_from_extension(str(dest))
    if fmt is None:
        raise UsageError(f"cannot tell the output format from {dest}",
                         hint="name it .xva/.ova/.qcow2/.vhd/.vmdk/.raw or pass --to FORMAT")
    if dest.exists() and not force:
        raise UsageError(f"{dest} already exists", hint="use --force to replace it")
    with host_driver(settings, host) as driver:
        state = driver.vm_state(name)
        if state in (PowerState.RUNNING, PowerState.PAUSED):
            raise Conflict(f"VM {name} on host {host} is {state}: its disk is in use",
                           hint=f"`glasspane vm shutdown {name}` first (or snapshot it "
                                "and export a clone)")
        if supports(driver, Capability.IMAGE_TRANSFER):
            _from_host(require(driver, Capability.IMAGE_TRANSFER, "exporting a VM"), name,
                       dest, fmt, disk, start)
            return fmt
        local = require(driver, Capability.PROVISIONING, "exporting a VM")
        if not is_local_uri(driver.uri):
            raise UsageError(f"host {host} is remote: exporting its VMs is not supported yet",
                             hint="run glasspane on that host")
        volumes = {v.name: v.path for v in local.list_volumes(settings.vm_storage)}
        path = volumes.get(f"{name}{SUFFIX}")
        if path is None:
            raise UsageError(f"VM {name} on host {host} has no disk glasspane made",
                             hint="only VMs created by glasspane can be exported")
        if disk != 0:
            raise UsageError(f"VM {name} has one disk: --disk {disk} does not exist")
        # The disk is the hypervisor's own volume, a linked clone over glasspane's template:
        # its backing file is read where libvirt put it.
        convert(path, str(dest), to=fmt, options=WriteOptions(vm_name=name), overwrite=force,
                start=start, references=FOLLOW_ANYWHERE)
        return fmt


def _from_host(driver: ImageTransfer, name: str, dest: Path, fmt: str, disk: int,
               start: StartFn) -> None:
    """The host sends the VM (an XVA) or a disk (raw or VHD) itself; another format is
    converted from the VHD it sent."""
    part = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    try:
        if fmt == "xva":
            driver.export_xva(name, str(part), start(0, f"{dest.name} (from XAPI)"))
        elif fmt in XAPI_DISK_FORMATS:
            driver.export_disk(name, disk, fmt, str(part), start(0, f"{dest.name} (from XAPI)"))
        else:
            vhd = dest.with_name(f".{dest.name}.vhd-{os.getpid()}")
            try:
                driver.export_disk(name, disk, "vhd", str(vhd),
                                   start(0, f"disk {disk} as VHD (from XAPI)"))
                convert(str(vhd), str(part), to=fmt, options=WriteOptions(vm_name=name),
                        overwrite=True, start=start)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    vhd.unlink()
        os.replace(part, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
