"""glasspane's own element in a domain's <metadata>: the template a VM was made from and its
labels, kept with the VM on its host so that any glasspane (or a restarted one) reads them
back.  Others' elements in the same <metadata> are theirs and left alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element, SubElement

from glasspane.hypervisors.domainxml.nodes import checked_text, child, drop, set_attr

METADATA_NS = "https://glasspane.dev/xmlns/vm/1"
METADATA_PREFIX = "glasspane"
# libvirt wants a prefix on a metadata element; this one rather than ElementTree's "ns0".
ET.register_namespace(METADATA_PREFIX, METADATA_NS)
_NS = f"{{{METADATA_NS}}}"


@dataclass
class Metadata:
    """glasspane's own: the template a VM was made from and its labels."""

    template: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def read_metadata(metadata: Element | None) -> Metadata | None:
    """glasspane's metadata, from a domain's <metadata> (or libvirt's copy of our element
    alone, which comes without the namespace); None when there is none."""
    if metadata is None:
        return None
    ours = metadata if metadata.tag in (f"{_NS}vm", "vm") else metadata.find(f"{_NS}vm")
    if ours is None:
        return None
    template = ours.findtext(f"{_NS}template") or ours.findtext("template")
    labels = {str(e.get("name")): e.text or ""
              for e in [*ours.findall(f"{_NS}label"), *ours.findall("label")] if e.get("name")}
    return Metadata(template, labels)


def metadata_element(meta: Metadata) -> Element:
    vm = Element(f"{_NS}vm")
    if meta.template:
        template = SubElement(vm, f"{_NS}template")
        template.text = checked_text(meta.template, "the template's name")
    for key, value in sorted(meta.labels.items()):
        label = SubElement(vm, f"{_NS}label")
        set_attr(label, "name", key, "a label's name")
        label.text = checked_text(value, f"label {key}")
    return vm


def write_metadata(root: Element, meta: Metadata | None) -> None:
    # Only our element is ours: others' metadata in the same <metadata> stays.
    metadata = root.find("metadata")
    if read_metadata(metadata) == meta:
        return  # as it was, where it was
    if metadata is not None:
        drop(metadata, f"{_NS}vm")
    if meta is not None:
        child(root, "metadata").append(metadata_element(meta))
    elif metadata is not None and len(metadata) == 0:
        root.remove(metadata)
