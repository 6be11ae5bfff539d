"""Hostile archives (issue 13): numbers and nesting that cost the old parsers minutes, gigabytes
or forever each end in a one-line error, exit 3, within a generous timeout, so that a
regression fails here instead of hanging the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from glasspane.errors import FormatError, LimitExceeded
from glasspane.images import tar
from glasspane.images.check import check_image
from glasspane.images.source import ByteSource
from tests.cli.runner import run_cli
from tests.images import hostile
from tests.images.test_bad_input import fails_cleanly

pytestmark = pytest.mark.timeout(60)


def info_fails(capsys: pytest.CaptureFixture[str], path: Path, *needles: str) -> None:
    result = run_cli(capsys, "image", "info", str(path))
    fails_cleanly(result, str(path), *needles)
    assert result.code == 3, result.err


def test_allocation_units_of_two_to_the_four_billion(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    path = hostile.huge_units_ova(tmp_path / "x.ova")
    assert 20_000 < path.stat().st_size < 32_000
    info_fails(capsys, path, "OVF memory item", "2^4000000000", "exponent beyond 60")


@pytest.mark.parametrize(("fields", "needles"), [
    ({"vcpus": "1000000000000000"}, ("vCPU count 1000000000000000", "outside 1..4096")),
    ({"vcpus": "9" * 5000}, ("vCPU count of 5000 digits",)),
    ({"vcpus": "-4"}, ("vCPU count '-4' is not a whole number",)),
    ({"memory": "99999999", "memory_units": "byte * 2^40"}, ("memory (MiB)", "outside")),
    ({"memory": "1" * 400}, ("memory quantity of 400 digits",)),
    ({"capacity": "1", "capacity_units": "byte * 2^60"}, ("OVF disk 'd1'", "capacity")),
    ({"capacity_units": "byte * 2^99999999999999999999"}, ("exponent beyond 60",)),
])
def test_absurd_vm_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                            fields: dict[str, str], needles: tuple[str, ...]) -> None:
    info_fails(capsys, hostile.absurd_ova(tmp_path / "x.ova", **fields), *needles)


@pytest.mark.parametrize("size", ["-1", "-1536", "abc", "1e3", " 12", "+512"])
def test_pax_size_not_a_number(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                               size: str) -> None:
    # -1536 sends the old reader from the member's header back onto the pax header, which
    # sends it forward to the member again: forever.  "abc" was a ValueError (a traceback).
    path = hostile.pax_size_tar(tmp_path / "x.ova", size)
    info_fails(capsys, path, "tar pax header", "not a non-negative number")


def test_octal_fields_take_no_sign(tmp_path: Path) -> None:
    data = bytearray(hostile.member("x.ovf", b"x" * 600) + tar.END_OF_ARCHIVE)
    data[124:136] = b"-0000002000\0"  # -1024: back to the header before this one
    data[148:156] = b" " * 8
    data[148:156] = f"{sum(data[:512]):06o}\0 ".encode()
    (tmp_path / "x.tar").write_bytes(bytes(data))
    with ByteSource.open(str(tmp_path / "x.tar")) as source, \
            pytest.raises(FormatError, match="is not octal"):
        list(tar.iter_members(source))


def test_ova_xml_nested_thousands_deep(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    info_fails(capsys, hostile.deep_xva(tmp_path / "deep.xva"), "ova.xml",
               "nested deeper than 32 levels")


def test_ova_xml_numbers_and_types(tmp_path: Path) -> None:
    from glasspane.images.xva_meta import disks_of, parse_ova_xml
    with pytest.raises(FormatError, match="malformed value"):
        parse_ova_xml(b"<value><struct><member><name>objects</name><value><int>" +
                      b"9" * 5000 + b"</int></value></member></struct></value>", "x")
    doc = {"objects": [{"class": "VM", "id": "Ref:0", "snapshot": {"VBDs": [["a list"]]}},
                       {"class": "VBD", "id": "['a list']", "snapshot": {"VDI": {"x": 1}}}]}
    disks_of(doc, "x")  # a list as a ref names nothing: no disks, no TypeError
    doc["objects"].append({"class": "VDI", "id": "{'x': 1}",
                           "snapshot": {"virtual_size": ["1"]}})
    with pytest.raises(FormatError, match="virtual_size"):
        disks_of(doc, "x")


def test_vm_fields_of_an_xva_out_of_range(tmp_path: Path) -> None:
    from glasspane.images.xva_meta import int_field
    with pytest.raises(LimitExceeded, match="VCPUs_max is 100000"):
        int_field({"VCPUs_max": "100000"}, "VCPUs_max", 1, "x", 4096)
    with pytest.raises(FormatError, match="not a number"):
        int_field({"memory_static_max": "9" * 5000}, "memory_static_max", 0, "x", 1 << 44)


@pytest.mark.parametrize("algorithm", ["MD4", "SHAKE_128", "WHIRLPOOL"])
def test_manifest_with_an_unknown_digest(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         algorithm: str) -> None:
    path = hostile.manifest_ova(tmp_path / "x.ova", algorithm)
    info_fails(capsys, path, f"uses the digest '{algorithm}'", "SHA1, SHA256, SHA512")
    report = check_image(str(path))  # reports, never raises
    assert not report.ok and algorithm in str(report.problems[0])
    result = run_cli(capsys, "image", "check", str(path))
    assert result.code == 1 and "Traceback" not in result.err and algorithm in result.out


def test_manifest_lines_of_other_writers(tmp_path: Path) -> None:
    """VirtualBox writes `SHA256 (name) = digest`; it is read, not skipped."""
    from glasspane.images.ova import OvaArchive
    descriptor = hostile.ovf()
    import hashlib
    manifest = f"SHA1 (x.ovf) = {hashlib.sha1(descriptor).hexdigest()}\n".encode()
    path = hostile.write_archive(tmp_path / "x.ova", hostile.member("x.ovf", descriptor),
                                 hostile.member("x.mf", manifest))
    with ByteSource.open(str(path)) as source:
        archive = OvaArchive(source)
        assert archive.manifest == [("SHA1", "x.ovf", hashlib.sha1(descriptor).hexdigest())]
        assert archive.check() == []


def test_an_ova_of_thousands_of_members(tmp_path: Path) -> None:
    from glasspane.images.ova import MAX_MEMBERS, OvaArchive
    members = [hostile.member("x.ovf", hostile.ovf())]
    members += [hostile.member(f"f{i}", b"") for i in range(MAX_MEMBERS)]
    path = hostile.write_archive(tmp_path / "x.ova", *members)
    with ByteSource.open(str(path)) as source, \
            pytest.raises(LimitExceeded, match=f"more than {MAX_MEMBERS} members"):
        OvaArchive(source)


def test_an_ovf_of_thousands_of_disks(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    disk = '<Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="1"/>'
    descriptor = hostile.ovf().replace(b"<DiskSection><Info>disks</Info>",
                                       b"<DiskSection><Info>disks</Info>" +
                                       disk.encode() * 5000)
    path = hostile.write_archive(tmp_path / "x.ova", hostile.member("x.ovf", descriptor))
    info_fails(capsys, path, "OVF DiskSection: 5001 disks, more than 256")
