"""Checked reads and edits of one ElementTree element: the only place a domain's values are
read from or written into XML.

Values go in as attribute values and text, which ElementTree escapes (quotes, `<`, `&`,
newlines in attributes); what it cannot escape, characters XML 1.0 cannot carry at all
(NUL and the other C0 controls but tab and newlines) and a carriage return in text (read
back as a newline), is refused here rather than written
as a document libvirt would reject or misread.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, SubElement

from glasspane.errors import HostError, UsageError

# Everything XML 1.0 allows in a document (its `Char` production).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_COUNT = re.compile("[0-9]{1,20}")

# libvirt's memory units (its `unit` attribute), in bytes.
_UNITS = {"b": 1, "bytes": 1, "kb": 1000, "k": 1024, "kib": 1024, "mb": 1000**2,
          "m": 1024**2, "mib": 1024**2, "gb": 1000**3, "g": 1024**3, "gib": 1024**3,
          "tb": 1000**4, "t": 1024**4, "tib": 1024**4, "pb": 1000**5, "p": 1024**5,
          "pib": 1024**5, "eb": 1000**6, "e": 1024**6, "eib": 1024**6}


def checked(value: str, what: str) -> str:
    if _NOT_XML.search(value):
        raise UsageError(f"{what} holds a control character a domain's XML cannot carry",
                         hint="remove it from the value")
    return value


def checked_text(value: str, what: str) -> str:
    """A value for an element's text, where ElementTree leaves a carriage return as it is
    and every parser reads it back as a newline: refused, so a value reads back as written."""
    if "\r" in value:
        raise UsageError(f"{what} holds a carriage return a domain's XML cannot keep",
                         hint="remove it from the value")
    return checked(value, what)


def child(parent: Element, tag: str) -> Element:
    """`parent`'s first `tag` child, made (at the end) if it has none."""
    found = parent.find(tag)
    return found if found is not None else SubElement(parent, tag)


def drop(parent: Element, tag: str) -> None:
    for found in parent.findall(tag):
        parent.remove(found)


def set_attr(el: Element, name: str, value: str | int | None, what: str) -> None:
    """Set (or, for None, remove) an attribute."""
    if value is None:
        el.attrib.pop(name, None)
    else:
        el.set(name, checked(str(value), what))


def set_child_text(parent: Element, tag: str, value: str | int | None, what: str) -> None:
    """The text of `parent`'s `tag` child; None removes the child."""
    if value is None:
        drop(parent, tag)
    else:
        child(parent, tag).text = checked_text(str(value), what)


def set_flag(parent: Element, tag: str, on: bool) -> None:
    """An empty marker element such as <readonly/>: there or not."""
    if not on:
        drop(parent, tag)
    elif parent.find(tag) is None:
        SubElement(parent, tag)


def attr(el: Element | None, name: str) -> str | None:
    return None if el is None else el.get(name)


def to_int(value: str | None, what: str, minimum: int = 0) -> int:
    """A count from a domain's XML; a hostile or broken definition ends in an error naming
    the element, not a ValueError."""
    text = (value or "").strip()
    # ASCII digits only: str.isdigit() also accepts digits int() refuses ("²").
    if not _COUNT.fullmatch(text) or int(text) < minimum:
        raise HostError(f"the VM's definition has an unreadable {what}: {text[:40]!r}")
    return int(text)


def memory_kib(el: Element, what: str) -> int:
    unit = (el.get("unit") or "KiB").lower()
    if unit not in _UNITS:
        raise HostError(f"the VM's definition gives its {what} in an unknown unit "
                        f"{unit[:20]!r}")
    return to_int(el.text, what) * _UNITS[unit] // 1024
