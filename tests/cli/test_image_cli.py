"""The `glasspane image` commands as a user runs them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from glasspane.cli import progress
from tests.cli.runner import run_cli
from tests.conftest import SAMPLE_SIZE


def test_info_json_describes_a_vm(capsys: pytest.CaptureFixture[str], sample_raw: Path,
                                  tmp_path: Path) -> None:
    xva = tmp_path / "vm.xva"
    r = run_cli(capsys, "image", "convert", "--quiet", "--name", "db-01", "--vcpus", "2",
                "--memory", "2048", str(sample_raw), str(xva))
    assert r.code == 0, r.err
    r = run_cli(capsys, "image", "info", "--json", str(xva))
    info = json.loads(r.out)
    assert info["format"] == "xva"
    assert info["vm"] == {"name": "db-01", "vcpus": 2, "memory_mib": 2048}
    assert info["disks"][0]["virtual_size"] == SAMPLE_SIZE
    assert info["disks"][0]["allocated_size"] < SAMPLE_SIZE
    assert info["checksums"] == ["checksum"]


def test_info_human_output_names_the_chain(capsys: pytest.CaptureFixture[str],
                                           qemu_images: dict[str, Path]) -> None:
    r = run_cli(capsys, "image", "info", str(qemu_images["qemu-overlay.qcow2"]))
    assert r.code == 0
    assert "qcow2" in r.out and "parent 1" in r.out and "qemu-v3.qcow2" in r.out


def test_convert_json_and_verify(capsys: pytest.CaptureFixture[str], sample_raw: Path,
                                 tmp_path: Path) -> None:
    out = tmp_path / "x.vhd"
    r = run_cli(capsys, "image", "convert", "--json", "--verify", str(sample_raw), str(out))
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["outputs"][0]["format"] == "vhd"
    assert data["outputs"][0]["file_size"] == out.stat().st_size
    assert "identical" in data["verified"][0]


def test_convert_with_explicit_format_and_force(capsys: pytest.CaptureFixture[str],
                                                sample_raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "disk.img"
    out.write_bytes(b"old")
    r = run_cli(capsys, "image", "convert", "-q", "--to", "qcow2", "--force", str(sample_raw),
                str(out))
    assert r.code == 0, r.err
    assert out.read_bytes()[:4] == b"QFI\xfb"


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch, sample_raw: Path,
                                    tmp_path: Path) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    monkeypatch.setattr(progress, "stderr", console)
    assert progress.stderr_console() is console
    from glasspane.images.convert import convert
    with progress.byte_progress(True) as start:
        convert(str(sample_raw), str(tmp_path / "p.qcow2"), start=start)
    text = buffer.getvalue()
    assert "p.qcow2" in text and "24.0/24.0 MiB" in text


def test_check_and_compare_exit_codes(capsys: pytest.CaptureFixture[str], sample_raw: Path,
                                      tmp_path: Path) -> None:
    qcow2 = tmp_path / "a.qcow2"
    assert run_cli(capsys, "image", "convert", "-q", str(sample_raw), str(qcow2)).code == 0
    r = run_cli(capsys, "image", "check", str(qcow2))
    assert r.code == 0 and "no problems found" in r.out
    r = run_cli(capsys, "image", "compare", str(sample_raw), str(qcow2))
    assert r.code == 0 and "identical" in r.out
    changed = tmp_path / "changed.raw"
    changed.write_bytes(sample_raw.read_bytes())
    with open(changed, "r+b") as f:
        f.seek(5 * (1 << 20) + 12345)
        f.write(b"\x99")
    r = run_cli(capsys, "image", "compare", "--json", str(qcow2), str(changed))
    assert r.code == 1
    assert json.loads(r.out)[0]["first_difference"] == 5 * (1 << 20) + 12345


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    r = run_cli(capsys, "--debug", "image", "info", str(tmp_path / "missing.qcow2"))
    assert r.code == 3
    assert "Traceback" in r.err and "no such file" in r.err


def test_demo_converts_through_every_format(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    r = run_cli(capsys, "demo", "formats", "--dir", str(tmp_path), "--size", "16")
    assert r.code == 0, r.out + r.err
    assert "every output holds exactly the sample's content" in r.out
    assert r.out.count("identical") >= 7


def test_a_local_output_is_not_replaced_without_force_and_leaves_nothing(
        capsys: pytest.CaptureFixture[str], sample_raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.vhd"
    out.write_bytes(b"mine")
    r = run_cli(capsys, "image", "convert", "-q", str(sample_raw), str(out))
    assert r.code == 4 and f"{out} already exists" in r.err and "--force" in r.err, r.err
    assert out.read_bytes() == b"mine"
    assert [p.name for p in tmp_path.iterdir()] == ["out.vhd"]  # no staging left beside it
    r = run_cli(capsys, "image", "convert", "-q", "--force", str(sample_raw), str(out))
    assert r.code == 0 and out.read_bytes() != b"mine", r.err
