"""Template operations shared by the CLI and (later) the API.

A template is a qcow2 volume `NAME.qcow2` in the host's template storage.  `import` accepts any
format the image toolkit reads (an XVA exported from XenServer included: the XenServer-to-KVM
path), converts it to qcow2 locally and uploads it through the hypervisor, so the same path
serves local and remote hosts.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

from glasspane.errors import NotFound, UsageError
from glasspane.hosts.service import has_storage, host_driver
from glasspane.hypervisors.base import VolumeInfo
from glasspane.hypervisors.capabilities import (
    Capability,
    Driver,
    ImageTransfer,
    Provisioning,
    require,
    supports,
)
from glasspane.images.base import WriteOptions
from glasspane.images.convert import StartFn, convert, no_progress
from glasspane.images.references import STANDALONE, References
from glasspane.settings import Settings

SUFFIX = ".qcow2"
# A template that boots directly from its kernel carries them as volumes beside its disk.
BOOT_SUFFIXES = (".vmlinuz", ".initrd")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    host: str
    path: str
    virtual_size: int
    allocation: int
    format: str
    builtin: bool = False  # one of XenServer's own: no disk, an installer from media

    @classmethod
    def of(cls, host: str, vol: VolumeInfo) -> TemplateInfo:
        return cls(vol.name.removesuffix(SUFFIX), host, vol.path, vol.capacity, vol.allocation,
                   vol.format)


def templates_on(driver: Driver, settings: Settings, host: str,
                 builtin: bool = False) -> list[TemplateInfo]:
    """The templates on the host `driver` is connected to: the host's own where it keeps
    them (a XenServer pool: with `builtin`, its built-in templates too, which glasspane
    cannot provision from), else glasspane's volumes in its template storage."""
    if supports(driver, Capability.HOST_TEMPLATES):
        pool = require(driver, Capability.HOST_TEMPLATES, "listing templates")
        return [TemplateInfo(name, host, uuid, size, size, "xva", own_builtin)
                for name, uuid, size, own_builtin in pool.list_templates(builtin)]
    if not supports(driver, Capability.PROVISIONING) or \
            not has_storage(driver, settings.template_storage):
        return []
    volumes = require(driver, Capability.PROVISIONING, "listing templates")
    return [TemplateInfo.of(host, v) for v in volumes.list_volumes(settings.template_storage)
            if v.name.endswith(SUFFIX)]


def _boot_volumes(driver: Provisioning, settings: Settings, name: str) -> list[str]:
    wanted = {name + suffix for suffix in BOOT_SUFFIXES}
    return [v.name for v in driver.list_volumes(settings.template_storage) if v.name in wanted]


def list_templates(settings: Settings, host: str = "local") -> list[TemplateInfo]:
    with host_driver(settings, host) as driver:
        return templates_on(driver, settings, host, builtin=True)


def import_template(settings: Settings, name: str, source: str, host: str = "local",
                    disk: int | None = None, start: StartFn = no_progress,
                    kernel: str | None = None, initrd: str | None = None,
                    references: References = STANDALONE) -> TemplateInfo:
    """Store `source` (any supported format; an XVA/OVA's disk `disk`, default its first) as
    template `name` on `host`, with the kernel and initrd it boots from if it has no
    bootloader; `references` says which backing files or parents `source` may have read.
    On failure nothing of the template is left on the host."""
    if not _NAME.match(name):
        raise UsageError(f"invalid template name {name!r}",
                         hint="letters, digits, '.', '_' and '-'")
    with host_driver(settings, host) as connected:
        if any(t.name == name for t in templates_on(connected, settings, host)):
            raise UsageError(f"template {name!r} already exists on host {host}",
                             hint="remove it first, or choose another name")
        if supports(connected, Capability.HOST_TEMPLATES):
            _import_to_host(require(connected, Capability.IMAGE_TRANSFER, "importing a "
                                    "template"), settings, name, source, disk, start,
                            references)
            return next(t for t in templates_on(connected, settings, host) if t.name == name)
        driver = require(connected, Capability.PROVISIONING, "importing a template")
        driver.ensure_storage(settings.template_storage)
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="import-", dir=settings.cache_dir) as work:
            local = f"{work}/{name}{SUFFIX}"
            convert(source, local, to="qcow2", disk=disk if disk is not None else 0,
                    sync=False, start=start, references=references)
            uploads = [(local, name + SUFFIX)]
            uploads += [(path, name + suffix) for path, suffix in
                        ((kernel, ".vmlinuz"), (initrd, ".initrd")) if path]
            progress = start(sum(os.path.getsize(p) for p, _ in uploads), f"upload to {host}")
            done: list[str] = []
            try:
                for path, volume in uploads:
                    driver.upload_volume(settings.template_storage, volume, path, progress)
                    done.append(volume)
            except BaseException:
                for volume in done:
                    driver.delete_volume(settings.template_storage, volume)
                raise
        return next(t for t in templates_on(driver, settings, host) if t.name == name)


def _import_to_host(driver: ImageTransfer, settings: Settings, name: str, source: str,
                      disk: int | None, start: StartFn, references: References) -> None:
    """An XVA goes to XAPI's /import as it is; any other format is made into one first (a
    temporary file: the XVA writer needs to seek)."""
    from glasspane.images.detect import probe
    from glasspane.images.source import ByteSource
    with ByteSource.open(source) as head:
        is_xva = probe(head) == "xva"
    if is_xva and disk is None:
        driver.import_xva(source, name, start(os.path.getsize(source), "upload to XAPI"))
        return
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="import-", dir=settings.cache_dir) as work:
        local = f"{work}/{name}.xva"
        convert(source, local, to="xva", disk=disk, sync=False, start=start,
                options=WriteOptions(vm_name=name, xva_checksum="xxhash"),
                references=references)
        driver.import_xva(local, name, start(os.path.getsize(local), "upload to XAPI"))


def remove_template(settings: Settings, name: str, host: str = "local") -> None:
    """Delete template `name`; refused while a VM or a volume depends on it."""
    with host_driver(settings, host) as connected:
        found = [t for t in templates_on(connected, settings, host) if t.name == name]
        if not found:
            raise NotFound(f"no template named {name!r} on host {host}")
        driver = require(connected, Capability.PROVISIONING, "removing a template",
                         hint="the host keeps its templates itself: remove it with the "
                              "host's own tools (XenCenter, xe)")
        users = driver.volume_users(found[0].path)
        if users:
            raise UsageError(f"template {name!r} is in use by {', '.join(users)}",
                             hint="destroy those first")
        for volume in [name + SUFFIX, *_boot_volumes(driver, settings, name)]:
            driver.delete_volume(settings.template_storage, volume)


def template_from_debian(settings: Settings, name: str, host: str = "local",
                         suite: str = "bookworm", start: StartFn = no_progress) -> TemplateInfo:
    """Build (or reuse from the cache) the Debian guest image and store it as a template."""
    from glasspane.guests.debian_image import debian_image
    image = debian_image(settings.cache_dir, suite, start)
    return import_template(settings, name, str(image.disk), host, start=start,
                           kernel=str(image.kernel), initrd=str(image.initrd))
