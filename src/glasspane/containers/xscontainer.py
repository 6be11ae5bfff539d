"""What XenCenter and Xen Orchestra already read: the VM.other_config keys that XenServer's
retired xscontainer wrote for each monitored VM, in its XML form, so their container views
show glasspane's data without any change on their side.

- `xscontainer-monitor`: "True" while the VM is monitored;
- `docker_ps`: <docker_ps><item><entry>...</entry></item>...</docker_ps>, one entry per
  container of `GET /containers/json?all=1` (without sizes: SizeRw changes whenever a
  container writes, and every write of the key is a VM event that starts another pass), keys
  lower-cased, `names` the first name without its slash, `container` the first 10 characters
  of the id, and `status` reduced to "Up", "Up (Paused)" or "Exited (N)" (a value that changes
  every second would rewrite the key on every pass);
- `docker_info` and `docker_version`: `GET /info` and `GET /version` the same way.

The encoding follows xscontainer's own converter, quirks included (the readers were written
against it): lists become <item> elements; keys that are not valid XML names (xscontainer:
leading digit, '/', leading punctuation, leading "xml"; here every invalid name, since labels
are free text) become <SPECIAL_XS_ENCODED_ELEMENT name="...">; text is escaped once before it
is put in the document, which escapes it again.  Characters XML 1.0 forbids (control
characters in a label or a command) are dropped: XenCenter parses the keys with LoadXml, which
throws on them, on every event of the VM.

The keys are cleared when the VM stops or its engine stops answering (a halted VM showing "Up"
containers), never carried into a clone, a copy or an imported template.
"""

from __future__ import annotations

import re
import xml.dom.minidom
from typing import Any
from xml.sax.saxutils import escape

MONITOR_KEY = "xscontainer-monitor"
KEYS = (MONITOR_KEY, "docker_ps", "docker_info", "docker_version")
# Fields that change while nothing a reader shows does (only asked for with size=1).
VOLATILE = ("sizerw", "sizerootfs")
# XML 1.0's Char production; anything else makes the document unreadable.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _special(key: str) -> bool:
    # xscontainer's own rule, widened to every key that is not a valid XML name: its
    # converter made broken documents from keys like "a&b" (labels are free text).
    return key.lower().startswith("xml") or not _XML_NAME.match(key)


def _append(document: Any, parent: Any, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            element = document.createElement("item")
            parent.appendChild(element)
            _append(document, element, item)
    elif isinstance(value, dict):
        for raw_key, item in value.items():
            key = xml_text(str(raw_key))
            if not key:
                continue
            if _special(key):
                element = document.createElement("SPECIAL_XS_ENCODED_ELEMENT")
                element.setAttribute("name", key)
            else:
                element = document.createElement(key)
            parent.appendChild(element)
            _append(document, element, item)
    else:
        parent.appendChild(document.createTextNode(escape(xml_text(str(value)))))


def to_xml(root: str, value: Any) -> str:
    document = xml.dom.minidom.Document()
    _append(document, document, {root: value})
    return str(document.toxml())


def stable_status(status: str) -> str:
    if status.startswith("Up"):
        return "Up (Paused)" if status.endswith("(Paused)") else "Up"
    match = re.match(r"^Exited \(-?\d+\)", status)
    return match.group(0) if match else status


def docker_ps_xml(containers: list[dict[str, Any]]) -> str:
    entries = []
    for container in containers:
        entry = {str(k).lower(): v for k, v in container.items()
                 if str(k).lower() not in VOLATILE}
        names = container.get("Names") or [""]
        entry["names"] = str(names[0]).lstrip("/")
        entry["container"] = str(container.get("Id", ""))[:10]
        entry["status"] = stable_status(str(container.get("Status", "")))
        entries.append({"entry": entry})
    return to_xml("docker_ps", entries)


def other_config(containers: list[dict[str, Any]], info: dict[str, Any],
                 version: dict[str, Any]) -> dict[str, str]:
    """The keys to write for one VM."""
    return {MONITOR_KEY: "True", "docker_ps": docker_ps_xml(containers),
            "docker_info": to_xml("docker_info", info),
            "docker_version": to_xml("docker_version", version)}


def to_write(current: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """The keys worth writing: docker_info and docker_version carry counters and clocks that
    change on every call, so, as xscontainer did, they are refreshed only when the containers
    changed (or are missing); the rest when they differ."""
    containers_changed = current.get("docker_ps") != new["docker_ps"]
    return {key: value for key, value in new.items()
            if current.get(key) != value and
            (key not in ("docker_info", "docker_version") or containers_changed
             or key not in current)}
