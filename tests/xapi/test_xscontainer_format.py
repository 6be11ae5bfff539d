"""The XML xscontainer wrote (and XenCenter and Xen Orchestra read), from glasspane's data."""

from __future__ import annotations

import xml.dom.minidom

from glasspane.containers.xscontainer import docker_ps_xml, other_config, to_xml

PODMAN_PS = [{"Id": "f381a0b75e4fb512ad6d3d58", "Names": ["/web"], "Image": "localhost/bb:1",
              "State": "running", "Status": "Up 4 minutes", "Created": 1764000000,
              "Ports": [{"PrivatePort": 8080, "PublicPort": 8080, "Type": "tcp"}],
              "Labels": {"io.glasspane.app": "shop", "8080/tcp": "x", "a&b": "<c>"}},
             {"Id": "0123456789abcdef", "Names": ["/old"], "Image": "x", "State": "exited",
              "Status": "Exited (137) 38 seconds ago", "Ports": [], "Labels": {}}]


def text(node: xml.dom.minidom.Element, name: str) -> str:
    [found] = [n for n in node.childNodes if getattr(n, "tagName", None) == name]
    return "".join(c.data for c in found.childNodes if c.nodeType == c.TEXT_NODE)


def test_docker_ps_entries() -> None:
    document = xml.dom.minidom.parseString(docker_ps_xml(PODMAN_PS))
    root = document.documentElement
    assert root.tagName == "docker_ps"
    items = [n for n in root.childNodes if n.tagName == "item"]
    entries = [i.getElementsByTagName("entry")[0] for i in items]
    assert [text(e, "names") for e in entries] == ["web", "old"]
    assert [text(e, "container") for e in entries] == ["f381a0b75e", "0123456789"]
    # A status that changes every second would rewrite the key on every pass.
    assert [text(e, "status") for e in entries] == ["Up", "Exited (137)"]
    assert text(entries[0], "image") == "localhost/bb:1"
    labels = entries[0].getElementsByTagName("labels")[0]
    special = labels.getElementsByTagName("SPECIAL_XS_ENCODED_ELEMENT")
    assert [s.getAttribute("name") for s in special] == ["8080/tcp", "a&b"]
    # Text escaped once by the converter, then by the document: what the readers were
    # built against.
    assert "".join(c.data for c in special[1].childNodes) == "&lt;c&gt;"


def test_keys_for_a_vm() -> None:
    keys = other_config(PODMAN_PS, {"Containers": 2, "OperatingSystem": "Debian"},
                        {"Version": "4.3.1", "ApiVersion": "1.41"})
    assert keys["xscontainer-monitor"] == "True"
    assert set(keys) == {"xscontainer-monitor", "docker_ps", "docker_info", "docker_version"}
    version = xml.dom.minidom.parseString(keys["docker_version"]).documentElement
    assert text(version, "Version") == "4.3.1"
    assert to_xml("x", [1, 2]) == '<?xml version="1.0" ?><x><item>1</item><item>2</item></x>'


def test_volatile_info_is_not_rewritten_while_containers_stay() -> None:
    from glasspane.containers.xscontainer import to_write
    first = other_config(PODMAN_PS, {"SystemTime": "10:00:01"}, {"Version": "4.3.1"})
    later = other_config(PODMAN_PS, {"SystemTime": "10:00:16"}, {"Version": "4.3.1"})
    assert set(to_write({}, first)) == set(first)
    assert to_write(first, later) == {}  # only the clock moved
    changed = other_config(PODMAN_PS[:1], {"SystemTime": "10:00:31"}, {"Version": "4.3.1"})
    assert set(to_write(first, changed)) == {"docker_ps", "docker_info"}


def test_no_volatile_sizes_and_no_characters_xml_forbids() -> None:
    """SizeRw changes whenever a container writes (each rewrite is a VM event, which starts
    another pass); a control character in a label or a command makes XenCenter's LoadXml
    throw on every event of the VM."""
    hostile = [{"Id": "abcdef0123456789", "Names": ["/t\x01ty"], "Image": "x", "State":
                "running", "Status": "Up 1 second", "Command": "sh -c 'printf \x1b[31m\x00'",
                "SizeRw": 12345, "SizeRootFs": 67890,
                "Labels": {"colour\x07": "red\x1b[0m", "ok": "\ufffe\U0001F600"}}]
    keys = other_config(hostile, {"Name": "vm\x0b"}, {"Version": "4.3.1"})
    for key in ("docker_ps", "docker_info", "docker_version"):
        xml.dom.minidom.parseString(keys[key])  # well-formed XML 1.0
    assert "sizerw" not in keys["docker_ps"] and "sizerootfs" not in keys["docker_ps"]
    entry = xml.dom.minidom.parseString(keys["docker_ps"]).getElementsByTagName("entry")[0]
    assert text(entry, "names") == "tty"
    assert text(entry, "command") == "sh -c 'printf [31m'"
    labels = entry.getElementsByTagName("labels")[0]
    assert [n.tagName for n in labels.childNodes] == ["colour", "ok"]
    assert text(labels, "ok") == "\U0001F600"
