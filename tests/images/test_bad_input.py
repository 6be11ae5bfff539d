"""Bad input: a clear one-line error naming the file, the structure and the offset, a non-zero
exit, no huge allocation or hang, and nothing left behind."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from glasspane.images import vhd_format as vf
from tests.cli.runner import Result, run_cli
from tests.images.helpers import convert_to


def fails_cleanly(result: Result, *needles: str) -> None:
    assert result.code != 0
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("glasspane: error: "), result.err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


@pytest.fixture
def vhd(sample_raw: Path, tmp_path: Path) -> Path:
    return convert_to(sample_raw, tmp_path / "in.vhd")


@pytest.fixture
def qcow2(sample_raw: Path, tmp_path: Path) -> Path:
    return convert_to(sample_raw, tmp_path / "in.qcow2")


def refresh_vhd_footer(path: Path, **changes: int) -> None:
    from dataclasses import replace
    data = path.read_bytes()
    footer = replace(vf.Footer.unpack(data[-512:]), **changes).with_checksum()
    patch(path, len(data) - 512, footer.pack())


def test_truncated_qcow2(capsys: pytest.CaptureFixture[str], qcow2: Path, tmp_path: Path
                         ) -> None:
    qcow2.write_bytes(qcow2.read_bytes()[:100])
    r = run_cli(capsys, "image", "convert", str(qcow2), str(tmp_path / "o.raw"))
    fails_cleanly(r, str(qcow2), "qcow2", "truncated")
    assert not (tmp_path / "o.raw").exists()


def test_wrong_magic(capsys: pytest.CaptureFixture[str], sample_raw: Path) -> None:
    fails_cleanly(run_cli(capsys, "image", "info", "--format", "qcow2", str(sample_raw)),
                  "qcow2 header", "offset 0", "bad magic")
    fails_cleanly(run_cli(capsys, "image", "info", "--format", "vhd", str(sample_raw)),
                  "VHD footer", "bad cookie")


def test_corrupt_vhd_footer_checksum(capsys: pytest.CaptureFixture[str], vhd: Path) -> None:
    size = vhd.stat().st_size
    patch(vhd, size - 512 + 40, b"\x00\x00\x00\x01")  # original size field
    fails_cleanly(run_cli(capsys, "image", "info", str(vhd)), "VHD footer", "checksum",
                  f"offset {size - 512}")


def test_vhd_bat_outside_the_file(capsys: pytest.CaptureFixture[str], vhd: Path) -> None:
    patch(vhd, 1536, struct.pack(">I", 0x7FFFFFF0))
    fails_cleanly(run_cli(capsys, "image", "info", str(vhd)), "VHD BAT entry 0",
                  "offset 1536", "outside the data area")


def test_vhd_bat_pointing_at_its_own_metadata(capsys: pytest.CaptureFixture[str], vhd: Path
                                              ) -> None:
    patch(vhd, 1536 + 4, struct.pack(">I", 3))  # sector 3: inside the header
    fails_cleanly(run_cli(capsys, "image", "info", str(vhd)), "VHD BAT entry 1", "offset 1540")


def test_qcow2_l1_pointing_at_itself(capsys: pytest.CaptureFixture[str], qcow2: Path,
                                     tmp_path: Path) -> None:
    l1_offset = struct.unpack_from(">Q", qcow2.read_bytes(), 40)[0]
    patch(qcow2, l1_offset, struct.pack(">Q", l1_offset | (1 << 63)))
    r = run_cli(capsys, "image", "convert", str(qcow2), str(tmp_path / "o.vhd"))
    fails_cleanly(r, "qcow2 L1 entry 0", f"offset {l1_offset}", "header or the L1 table")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.qcow2"]


def test_qcow2_l2_entry_outside_the_file(capsys: pytest.CaptureFixture[str], qcow2: Path
                                         ) -> None:
    data = qcow2.read_bytes()
    l1_offset = struct.unpack_from(">Q", data, 40)[0]
    l2_offset = struct.unpack_from(">Q", data, l1_offset)[0] & ((1 << 62) - 1)
    patch(qcow2, l2_offset, struct.pack(">Q", (1 << 63) | (1 << 50)))
    fails_cleanly(run_cli(capsys, "image", "compare", str(qcow2), str(qcow2)),
                  "qcow2 data cluster", "truncated")


def test_declared_petabytes(capsys: pytest.CaptureFixture[str], qcow2: Path, vhd: Path
                            ) -> None:
    patch(qcow2, 24, struct.pack(">Q", 1 << 50))
    fails_cleanly(run_cli(capsys, "image", "info", str(qcow2)), "beyond the limit")
    refresh_vhd_footer(vhd, current_size=1 << 50, original_size=1 << 50)
    fails_cleanly(run_cli(capsys, "image", "info", str(vhd)), "beyond the limit")


def test_vmdk_descriptor_garbage(capsys: pytest.CaptureFixture[str], sample_raw: Path,
                                 tmp_path: Path) -> None:
    vmdk = convert_to(sample_raw, tmp_path / "x.vmdk")
    patch(vmdk, 512 + 22, b"\x01 garbage line with no equals sign\n")
    fails_cleanly(run_cli(capsys, "image", "info", str(vmdk)), "VMDK descriptor", "line 2",
                  "offset 512")
    patch(vmdk, 512, b"\xff\xfe\xfa")
    fails_cleanly(run_cli(capsys, "image", "info", str(vmdk)), "VMDK descriptor", "not text")


def test_absolute_member_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tests.images.xva_builder import build_xva
    path = tmp_path / "abs.xva"
    build_xva(path, [(1 << 20, [(0, b"\x01" * (1 << 20))])],
              extra_members=[("/etc/shadow", b"")])
    fails_cleanly(run_cli(capsys, "image", "info", str(path)), "escapes the archive")


def test_usage_errors(capsys: pytest.CaptureFixture[str], sample_raw: Path, tmp_path: Path
                      ) -> None:
    r = run_cli(capsys, "image", "convert", str(sample_raw), str(tmp_path / "x.unknown"))
    fails_cleanly(r, "cannot tell the output format", "--to")
    assert r.code == 2
    existing = tmp_path / "exists.qcow2"
    existing.write_bytes(b"keep me")
    r = run_cli(capsys, "image", "convert", str(sample_raw), str(existing))
    fails_cleanly(r, "already exists", "--force")
    assert existing.read_bytes() == b"keep me"
    r = run_cli(capsys, "image", "info", str(tmp_path / "nope.vhd"))
    fails_cleanly(r, "nope.vhd", "no such file")
    r = run_cli(capsys, "image", "convert", str(sample_raw), str(tmp_path / "a.raw"),
                "--disk", "3")
    fails_cleanly(r, "--disk 3")


def test_check_reports_instead_of_failing(capsys: pytest.CaptureFixture[str], vhd: Path
                                          ) -> None:
    patch(vhd, 1536, struct.pack(">I", 0x7FFFFFF0))
    r = run_cli(capsys, "image", "check", str(vhd))
    assert r.code == 1
    assert "VHD BAT entry 0 at offset 1536" in r.out
