"""OVA: a tar holding an OVF descriptor first, then the disk files it references (VMDK
streamOptimized when glasspane writes one), and a manifest of SHA-256 digests at the end."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from glasspane.errors import FormatError, LimitExceeded, UnsupportedFeature
from glasspane.images import ovf, tar
from glasspane.images.base import ByteSink, Problem, ProgressFn, WriteOptions
from glasspane.images.extents import Extent
from glasspane.images.references import INSIDE_ARCHIVE
from glasspane.images.source import ByteSource
from glasspane.images.vm import VmDisk, VmImage, VmSettings
from glasspane.images.vmdk import VmdkWriter

# An OVA holds a descriptor, a manifest, a certificate and its disks; thousands of members
# mean a crafted archive.  The manifest names each file once, in a line of a few hundred bytes.
MAX_MEMBERS = 4096
MAX_MANIFEST = 1 << 20
# The digests OVF 1.x/2.x manifests use (DSP0243 5.1): anything else is refused by name rather
# than handed to hashlib, which knows dozens more (and some need arguments).
DIGESTS = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


class OvaArchive:
    def __init__(self, source: ByteSource) -> None:
        self.source = source
        self.path = source.path
        self.members: dict[str, tar.TarMember] = {}
        for count, m in enumerate(tar.iter_members(source)):
            if count >= MAX_MEMBERS:
                raise LimitExceeded(f"OVA of more than {MAX_MEMBERS} members", path=self.path,
                                    hint="the archive is crafted or not an OVA")
            if m.kind == "file":
                self.members[m.name] = m
        descriptors = [m for m in self.members.values() if m.name.endswith(".ovf")]
        if not descriptors:
            raise FormatError("no .ovf descriptor in the archive", path=self.path,
                              structure="OVA")
        d = descriptors[0]
        if d.size > ovf.MAX_OVF:
            raise FormatError(f"OVF descriptor of {d.size} bytes", path=self.path,
                              structure="OVA")
        self.descriptor_member = d
        self.descriptor = ovf.parse_ovf(source.pread(d.offset, d.size, "OVF descriptor"),
                                        self.path)
        self.manifest = self._read_manifest()

    def vm(self) -> VmImage:
        from glasspane.images.detect import open_disk_source
        disks = []
        for d in self.descriptor.disks:
            member = self.members.get(d.href)
            if member is None:
                raise FormatError(f"disk file {d.href!r} named by the descriptor is not in the "
                                  "archive", path=self.path, structure="OVA")
            region = self.source.region(member.offset, member.size, d.href)
            # A disk inside the archive names no other file: whatever it names is not in it.
            disks.append(VmDisk(d.href, open_disk_source(region, references=INSIDE_ARCHIVE)))
        desc = self.descriptor
        return VmImage(desc.name, desc.vcpus, desc.memory_mib, disks, "ova", self.path,
                       source=self.source, archive_check=self.check)

    def _read_manifest(self) -> list[tuple[str, str, str]]:
        """(algorithm as written, member name, digest) of each manifest line."""
        lines: list[tuple[str, str, str]] = []
        for m in self.members.values():
            if not m.name.endswith(".mf"):
                continue
            if m.size > MAX_MANIFEST:
                raise LimitExceeded(f"OVA manifest {m.name[:64]} of {m.size} bytes",
                                    path=self.path)
            text = self.source.pread(m.offset, m.size, "OVA manifest").decode("utf-8",
                                                                              "replace")
            for line in text.splitlines():
                parsed = _manifest_line(line)
                if parsed is None:
                    continue
                algo, name, digest = parsed
                if algo.upper() not in DIGESTS:
                    raise UnsupportedFeature(
                        f"OVA manifest {m.name[:64]} uses the digest {algo[:16]!r} (known: "
                        f"{', '.join(DIGESTS)})", path=self.path,
                        hint="remove the .mf member or write it again with SHA256")
                lines.append((algo, name.strip(), digest.lower()))
        return lines

    def check(self) -> list[Problem]:
        """Verify the manifest's digests, if there is a manifest."""
        problems: list[Problem] = []
        for algo, name, digest in self.manifest:
            target = self.members.get(name)
            if target is None:
                problems.append(Problem("OVA manifest", f"names missing file {name[:200]}"))
                continue
            h = hashlib.new(DIGESTS[algo.upper()])
            for pos in range(0, target.size, 4 << 20):
                n = min(4 << 20, target.size - pos)
                h.update(self.source.pread(target.offset + pos, n, name))
            if h.hexdigest() != digest:
                problems.append(Problem(f"OVA member {name[:200]}", f"{algo} digest "
                                        "differs from the manifest", target.header_offset))
        return problems


def _manifest_line(line: str) -> tuple[str, str, str] | None:
    """`SHA256(name)= digest` (ovftool, glasspane) or `SHA256 (name) = digest` (VirtualBox),
    split by hand: linear whatever the line holds."""
    left, equals, digest = line.rpartition("=")
    algo, paren, name = left.partition("(")
    name = name.rstrip()
    if not equals or not paren or not name.endswith(")"):
        return None
    return algo.strip(), name[:-1], digest.strip()


def write_ova(sink: ByteSink, settings: VmSettings,
              disks: list[tuple[int, Iterable[Extent]]], progress: ProgressFn) -> None:
    stem = _safe_stem(settings.name)
    hrefs = [f"{stem}-disk{i + 1}.vmdk" for i in range(len(disks))]
    desc = ovf.OvfDescriptor(settings.name, settings.vcpus, settings.memory_mib,
                             [ovf.OvfDisk(f"vmdisk{i + 1}", hrefs[i], size)
                              for i, (size, _) in enumerate(disks)])
    xml = ovf.build_ovf(desc)
    ovf_name = f"{stem}.ovf"
    digests = [(ovf_name, hashlib.sha256(xml).hexdigest())]
    sink.append(tar.header(ovf_name, len(xml)) + xml + tar.padding(len(xml)))
    for href, (size, extents) in zip(hrefs, disks, strict=True):
        header_at = sink.append(bytes(tar.BLOCK))
        member = ByteSink(sink.fd, href, sink.base + header_at + tar.BLOCK)
        VmdkWriter(member, size, WriteOptions()).write(extents, progress)
        member.flush()
        length = member.end
        # The member's size is known only now: patch its header in place.
        sink.pwrite(tar.header(href, length), header_at)
        sink.end = header_at + tar.BLOCK + length
        sink.append(tar.padding(length))
        digests.append((href, _sha256_of(sink, header_at + tar.BLOCK, length)))
    manifest = "".join(f"SHA256({name})= {digest}\n" for name, digest in digests).encode()
    mf_name = f"{stem}.mf"
    sink.append(tar.header(mf_name, len(manifest)) + manifest + tar.padding(len(manifest)))
    sink.append(tar.END_OF_ARCHIVE)
    sink.flush()


def _sha256_of(sink: ByteSink, offset: int, length: int) -> str:
    sink.flush()
    h = hashlib.sha256()
    pos = 0
    while pos < length:
        n = min(4 << 20, length - pos)
        h.update(os.pread(sink.fd, n, sink.base + offset + pos))
        pos += n
    return h.hexdigest()


def _safe_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return stem[:60] or "vm"


