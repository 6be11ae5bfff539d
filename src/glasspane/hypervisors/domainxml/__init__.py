"""libvirt domain XML as a typed model: build it, read it back from libvirt, change it and
write it again without losing what the model does not describe."""

from glasspane.hypervisors.domainxml.devices import (
    DEVICE_TYPES,
    Controller,
    Device,
    Disk,
    Graphics,
    Nic,
    Rng,
    Serial,
    Video,
    device_xml,
)
from glasspane.hypervisors.domainxml.domain import Boot, Domain
from glasspane.hypervisors.domainxml.metadata import (
    METADATA_NS,
    METADATA_PREFIX,
    Metadata,
    read_metadata,
)

__all__ = ["DEVICE_TYPES", "METADATA_NS", "METADATA_PREFIX", "Boot", "Controller", "Device",
           "Disk", "Domain", "Graphics", "Metadata", "Nic", "Rng", "Serial", "Video",
           "device_xml", "read_metadata"]
