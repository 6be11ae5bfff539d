"""The Debian guest image: built once per machine (cached by its recipe's hash), generalized,
and it boots under TCG to a login prompt on its serial console."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from glasspane.guests.debian_image import GuestImage, debian_image, recipe, recipe_hash
from glasspane.settings import Settings

pytestmark = pytest.mark.integration
BOOT_TIMEOUT = 240


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    # The user's real cache directory: the image is built once per machine, not per test run.
    return debian_image(Settings.load().cache_dir)


def test_cached_by_recipe(guest_image: GuestImage) -> None:
    assert guest_image.recipe_hash == recipe_hash(recipe())
    assert guest_image.recipe_hash in str(guest_image.disk)
    began = time.monotonic()
    assert debian_image(Settings.load().cache_dir) == guest_image
    assert time.monotonic() - began < 1, "a second call must reuse the cache"
    assert recipe_hash(recipe(size="4G")) != guest_image.recipe_hash
    # A template spec's extra packages make another image; the same set, in any order and
    # with the usual ones repeated, the same one.
    with_curl = recipe(extra=("curl", "jq", "podman"))
    assert with_curl["packages"][-2:] == ["curl", "jq"]
    assert recipe_hash(with_curl) != guest_image.recipe_hash
    assert recipe_hash(recipe(extra=("jq", "curl"))) == recipe_hash(with_curl)
    assert recipe_hash(recipe(extra=())) == guest_image.recipe_hash


def test_image_is_generalized(guest_image: GuestImage, tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(guest_image.disk), str(raw)],
                   check=True)

    def debugfs(request: str) -> str:
        return subprocess.run(["debugfs", "-R", request, str(raw)], capture_output=True,
                              text=True, check=True).stdout

    assert debugfs("cat /etc/machine-id").strip() == ""
    assert "ssh_host_" not in debugfs("ls /etc/ssh")
    assert "NoCloud" in debugfs("cat /etc/cloud/cloud.cfg.d/90-glasspane.cfg")
    assert "LABEL=root" in debugfs("cat /etc/fstab")


def test_boots_to_login_under_tcg(guest_image: GuestImage, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(guest_image.disk),
                    "-F", "qcow2", str(overlay)], check=True)
    console = tmp_path / "console.log"
    with open(console, "wb") as out:
        proc = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-smp", "2", "-m", "512",
             "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
             "-kernel", str(guest_image.kernel), "-initrd", str(guest_image.initrd),
             "-append", guest_image.cmdline,
             "-drive", f"file={overlay},if=virtio,format=qcow2"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if b"login:" in console.read_bytes():
                break
            time.sleep(2)
        text = console.read_bytes().decode(errors="replace")
        assert "login:" in text, f"no login prompt in {BOOT_TIMEOUT} s:\n{text[-2000:]}"
        assert "Debian GNU/Linux 12" in text
    finally:
        proc.kill()
        proc.wait()
