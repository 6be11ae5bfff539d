"""The devices of a domain glasspane reads and writes: one dataclass each, with the reader
that makes it from its element and the writer that puts it back.

A writer edits the element the device was read from (`origin`), touching only what the
dataclass describes, so whatever else libvirt or another tool put there (addresses, aliases,
boot order, driver tuning) survives a change.  To add a device: write its dataclass with a
`tag`, a `read` classmethod and a `write` method, and list it in DEVICE_TYPES.
"""

from __future__ import annotations

import re
from copy import deepcopy
from dataclasses import dataclass, field
from typing import ClassVar, Self
from xml.etree.ElementTree import Element, SubElement, tostring

from glasspane.errors import UsageError
from glasspane.hypervisors.domainxml.nodes import (
    attr,
    checked_text,
    child,
    drop,
    set_attr,
    set_flag,
    to_int,
)

MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


@dataclass(kw_only=True)
class Device:
    """What every device has: the element it was read from, not part of its value."""

    tag: ClassVar[str]
    origin: Element | None = field(default=None, compare=False, repr=False)

    @classmethod
    def read(cls, el: Element) -> Self:
        raise NotImplementedError

    def write(self, el: Element) -> None:
        raise NotImplementedError


@dataclass
class Disk(Device):
    """A disk or CD-ROM backed by a file (or, read from others' domains, a block device);
    `path` None is an empty CD drive.  Other sources (network, pool volumes) are kept as
    they are, with `path` None."""

    tag: ClassVar[str] = "disk"
    path: str | None
    target: str = ""         # the guest's name for it: vda, sda; "" picks the next free one
    bus: str = "virtio"
    format: str | None = "qcow2"
    device: str = "disk"     # disk | cdrom | floppy | lun
    readonly: bool = False
    source_type: str = "file"

    # Where each source type keeps its path; others' sources are left alone.
    _PATH_ATTR: ClassVar[dict[str, str]] = {"file": "file", "block": "dev"}

    @classmethod
    def read(cls, el: Element) -> Self:
        source_type = el.get("type", "file")
        key = cls._PATH_ATTR.get(source_type)
        target = el.find("target")
        return cls(path=attr(el.find("source"), key) if key else None,
                   target=attr(target, "dev") or "", bus=attr(target, "bus") or "",
                   format=attr(el.find("driver"), "type"), device=el.get("device", "disk"),
                   readonly=el.find("readonly") is not None, source_type=source_type,
                   origin=el)

    def write(self, el: Element) -> None:
        set_attr(el, "type", self.source_type, "the disk's source type")
        set_attr(el, "device", self.device, "the disk's device")
        if self.format is not None:
            driver = child(el, "driver")
            driver.set("name", driver.get("name", "qemu"))
            set_attr(driver, "type", self.format, "the disk's format")
        elif el.find("driver") is not None:
            set_attr(child(el, "driver"), "type", None, "")
        if key := self._PATH_ATTR.get(self.source_type):
            self._write_path(el, key)
        target = child(el, "target")
        set_attr(target, "dev", self.target, "the disk's target")
        set_attr(target, "bus", self.bus or None, "the disk's bus")
        set_flag(el, "readonly", self.readonly)

    def _write_path(self, el: Element, key: str) -> None:
        if self.path is not None:
            set_attr(child(el, "source"), key, self.path, "the disk's path")
            return
        source = el.find("source")
        if source is not None:  # ejected: a source left with nothing in it goes
            source.attrib.pop(key, None)
            if not source.attrib and len(source) == 0:
                el.remove(source)


@dataclass
class Nic(Device):
    """A network interface on a libvirt network (or, read from others' domains, a bridge;
    other kinds are kept as they are)."""

    tag: ClassVar[str] = "interface"
    network: str | None
    mac: str | None = None   # None: libvirt picks one
    model: str | None = "virtio"
    kind: str = "network"
    bridge: str | None = None

    @classmethod
    def read(cls, el: Element) -> Self:
        kind = el.get("type", "")
        source = el.find("source")
        return cls(network=attr(source, "network") if kind == "network" else None,
                   mac=attr(el.find("mac"), "address"), model=attr(el.find("model"), "type"),
                   kind=kind, bridge=attr(source, "bridge") if kind == "bridge" else None,
                   origin=el)

    def write(self, el: Element) -> None:
        if self.mac is not None and not MAC.fullmatch(self.mac):
            raise UsageError(f"{self.mac[:40]!r} is not a MAC address",
                             hint="write it as six hexadecimal pairs: 52:54:00:12:34:56")
        set_attr(el, "type", self.kind, "the interface's kind")
        if self.kind in ("network", "bridge"):
            value = self.network if self.kind == "network" else self.bridge
            set_attr(child(el, "source"), self.kind, value, f"the interface's {self.kind}")
        _set_child_attr(el, "mac", "address", self.mac, "the interface's MAC address")
        _set_child_attr(el, "model", "type", self.model, "the interface's model")


@dataclass
class Serial(Device):
    """A serial port: written to a file (glasspane's console log), or a pty whose output
    libvirt can also copy to `log`."""

    tag: ClassVar[str] = "serial"
    kind: str = "file"       # file | pty
    path: str | None = None  # the file a `file` port writes to
    port: int = 0
    log: str | None = None

    @classmethod
    def read(cls, el: Element) -> Self:
        kind = el.get("type", "")
        port = attr(el.find("target"), "port")
        return cls(kind=kind, path=attr(el.find("source"), "path") if kind == "file" else None,
                   port=to_int(port, "serial port") if port is not None else 0,
                   log=attr(el.find("log"), "file"), origin=el)

    def write(self, el: Element) -> None:
        if self.kind != "file" and el.get("type") == "file":
            drop(el, "source")  # the file it wrote to: a pty's source is libvirt's to give
        set_attr(el, "type", self.kind, "the serial port's kind")
        if self.kind == "file":
            set_attr(child(el, "source"), "path", self.path, "the serial port's file")
        set_attr(child(el, "target"), "port", self.port, "the serial port's number")
        _set_child_attr(el, "log", "file", self.log, "the serial port's log file")


@dataclass
class Rng(Device):
    """A random number generator fed from the host (guests boot faster with one)."""

    tag: ClassVar[str] = "rng"
    model: str = "virtio"
    source: str | None = "/dev/urandom"

    @classmethod
    def read(cls, el: Element) -> Self:
        backend = el.find("backend")
        # A backend with parts of its own (egd over TCP) has no path: None, left alone.
        text = (backend.text or "").strip() if backend is not None else ""
        return cls(model=el.get("model", ""), source=text or None, origin=el)

    def write(self, el: Element) -> None:
        set_attr(el, "model", self.model, "the RNG's model")
        if self.source is not None:
            backend = child(el, "backend")
            backend.set("model", backend.get("model", "random"))
            backend.text = checked_text(self.source, "the RNG's source")


@dataclass
class Graphics(Device):
    """A graphical console: VNC (or SPICE) listening on an address, or on a unix socket
    (`socket`), which keeps it off the network.  `socket` "" is a socket whose path libvirt
    picks in the domain's own directory when it starts (read back from the running domain):
    no port to collide and nothing on any network."""

    tag: ClassVar[str] = "graphics"
    kind: str = "vnc"
    listen: str | None = "127.0.0.1"
    socket: str | None = None

    @classmethod
    def read(cls, el: Element) -> Self:
        listen, socket = _listening(el)
        return cls(kind=el.get("type", ""), listen=listen, socket=socket, origin=el)

    def write(self, el: Element) -> None:
        set_attr(el, "type", self.kind, "the graphics' kind")
        if _listening(el) == (self.listen, self.socket):
            return  # as it was: libvirt's own <listen> details stay
        # One <listen>, and none of the old-style attribute libvirt mirrors it in.
        drop(el, "listen")
        el.attrib.pop("listen", None)
        if self.socket is not None:
            listen = SubElement(el, "listen", type="socket")
            set_attr(listen, "socket", self.socket or None, "the graphics' socket")
        elif self.listen is not None:
            el.set("autoport", el.get("autoport", "yes"))
            listen = SubElement(el, "listen", type="address")
            set_attr(listen, "address", self.listen, "the graphics' address")


def _listening(el: Element) -> tuple[str | None, str | None]:
    """(address, socket) a graphics element listens on."""
    listen = el.find("listen")
    if listen is None:
        return el.get("listen"), None
    if listen.get("type") == "socket":
        return None, listen.get("socket", "")
    return listen.get("address"), listen.get("socket")


@dataclass
class Video(Device):
    tag: ClassVar[str] = "video"
    model: str = "virtio"

    @classmethod
    def read(cls, el: Element) -> Self:
        return cls(model=attr(el.find("model"), "type") or "", origin=el)

    def write(self, el: Element) -> None:
        set_attr(child(el, "model"), "type", self.model, "the video model")


@dataclass
class Controller(Device):
    """A bus controller: glasspane adds a virtio-scsi one for SCSI disks, and spare PCIe
    root ports, which a q35 machine needs to hot-plug a disk or NIC."""

    tag: ClassVar[str] = "controller"
    kind: str = "pci"              # pci | scsi | sata | usb | virtio-serial...
    model: str | None = None       # pcie-root-port | virtio-scsi...
    index: int | None = None       # None: libvirt numbers it

    @classmethod
    def read(cls, el: Element) -> Self:
        index = el.get("index")
        return cls(kind=el.get("type", ""), model=el.get("model"),
                   index=to_int(index, "controller index") if index is not None else None,
                   origin=el)

    def write(self, el: Element) -> None:
        set_attr(el, "type", self.kind, "the controller's type")
        set_attr(el, "index", self.index, "the controller's index")
        set_attr(el, "model", self.model, "the controller's model")


DEVICE_TYPES: tuple[type[Device], ...] = (Disk, Nic, Serial, Rng, Graphics, Video, Controller)
_BY_TAG = {kind.tag: kind for kind in DEVICE_TYPES}


def read_device(el: Element) -> Device | None:
    """The device an element of <devices> is, or None for kinds glasspane does not model
    (controllers, inputs, consoles...), which stay in the tree untouched."""
    kind = _BY_TAG.get(el.tag)
    return kind.read(el) if kind else None


def is_device(el: Element) -> bool:
    return el.tag in _BY_TAG


def new_element(device: Device) -> Element:
    return Element(device.tag)


def device_xml(device: Device) -> str:
    """The device alone as XML, what libvirt's attach, detach and update calls take."""
    el = new_element(device) if device.origin is None else deepcopy(device.origin)
    device.write(el)
    return tostring(el, encoding="unicode")


def _set_child_attr(el: Element, tag: str, name: str, value: str | None, what: str) -> None:
    """An element such as <mac address=.../>, which is there exactly when it has a value."""
    if value is None:
        drop(el, tag)
    else:
        set_attr(child(el, tag), name, value, what)
