"""OVA: read one that glasspane did not write (OVF 2.0 namespace, qemu-img's VMDK, tarfile),
and check its manifest."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from glasspane.errors import FormatError
from glasspane.images.check import check_image
from glasspane.images.detect import open_image
from glasspane.images.vm import VmImage
from tests.images.helpers import assert_same

OVF2 = b"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/2"
    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:id="f1" ovf:href="root.vmdk"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="24"
          ovf:capacityAllocationUnits="byte * 2^20"/>
  </DiskSection>
  <VirtualSystem ovf:id="appliance">
    <Info>a VM</Info><Name>appliance</Name>
    <VirtualHardwareSection><Info>hw</Info>
      <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>8</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits>
        <rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>4</rasd:VirtualQuantity></Item>
      <Item><rasd:HostResource>ovf:/disk/d1</rasd:HostResource>
        <rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""


def build_ova(path: Path, vmdk: bytes, manifest_digest: str | None = None) -> None:
    digest = manifest_digest or hashlib.sha256(vmdk).hexdigest()
    manifest = (f"SHA256(appliance.ovf)= {hashlib.sha256(OVF2).hexdigest()}\n"
                f"SHA256(root.vmdk)= {digest}\n").encode()
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("appliance.ovf", OVF2), ("appliance.mf", manifest),
                           ("root.vmdk", vmdk)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.integration
def test_reads_a_foreign_ova(qemu_images: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "foreign.ova"
    build_ova(path, qemu_images["qemu-stream.vmdk"].read_bytes())
    vm = open_image(str(path))
    assert isinstance(vm, VmImage)
    try:
        assert (vm.name, vm.vcpus, vm.memory_mib, len(vm.disks)) == ("appliance", 8, 4096, 1)
    finally:
        vm.close()
    assert_same(qemu_images["sample.raw"], path)
    assert check_image(str(path)).ok


@pytest.mark.integration
def test_manifest_mismatch_is_reported(qemu_images: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "tampered.ova"
    build_ova(path, qemu_images["qemu-stream.vmdk"].read_bytes(), manifest_digest="0" * 64)
    report = check_image(str(path))
    assert not report.ok
    assert "root.vmdk" in str(report.problems[0]) and "manifest" in str(report.problems[0])


def test_ova_naming_a_missing_disk(tmp_path: Path) -> None:
    path = tmp_path / "empty.ova"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("appliance.ovf")
        info.size = len(OVF2)
        tar.addfile(info, io.BytesIO(OVF2))
    with pytest.raises(FormatError, match=r"root\.vmdk"):
        open_image(str(path))
