"""Which files an image may have read through it (images.references), with real crafted files:
qcow2 overlays made by qemu-img naming a backing file, differencing VHDs made by hand naming a
parent, a qcow2 inside an OVA.  The server's policy reads only other stored images by their
bare name; the local CLI reads the user's own files wherever they are named; a disk inside an
archive names nothing.  Refusals name neither the target's path nor its bytes nor its UUID."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from glasspane.errors import ImageError, ReferenceRefused
from glasspane.images.compare import compare_images
from glasspane.images.convert import convert
from glasspane.images.detect import open_image
from glasspane.images.references import (
    FOLLOW_ANYWHERE,
    STANDALONE,
    References,
    StoreReferences,
)
from glasspane.images.sample import MIB
from tests.cli.runner import run_cli
from tests.images.helpers import (
    convert_to,
    footer_of,
    make_child,
    ova_holding,
    qemu_overlay,
)

pytestmark = pytest.mark.integration
SECRET = b"hunter2-admin-password\n"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A server's directories: the store (data/images) and, beside it, a secret in
    config/admin-password."""
    store = tmp_path / "data" / "images"
    store.mkdir(parents=True)
    secret = tmp_path / "config" / "admin-password"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    return store, secret


def assert_tells_nothing(error: BaseException | str, tmp_path: Path, *secrets: bytes,
                         uuids: tuple[bytes, ...] = (), referrer: Path | None = None) -> None:
    """Neither the target's bytes, nor its UUID, nor any path but the image's own (which the
    server in turn replaces with its stored name)."""
    text = str(error)
    if referrer is not None:
        text = text.replace(str(referrer), "IMAGE")
    for secret in secrets:
        assert secret.decode("latin-1").strip() not in text, text
        assert secret[:8].decode("latin-1") not in text and repr(secret[:8]) not in text, text
    for identity in uuids:
        assert str(uuid.UUID(bytes=identity)) not in text, text
    assert str(tmp_path) not in text and "/config" not in text and "/etc" not in text, text


def convert_with(references: References, src: Path, dst: Path) -> None:
    convert(str(src), str(dst), overwrite=True, references=references)


@pytest.mark.parametrize("how", ["relative", "absolute", "parent-dir-of-store"])
def test_store_refuses_a_backing_file_outside_it(layout: tuple[Path, Path], tmp_path: Path,
                                                 how: str) -> None:
    store, secret = layout
    name = {"relative": "../../config/admin-password", "absolute": str(secret),
            "parent-dir-of-store": "../images/../../config/admin-password"}[how]
    overlay = qemu_overlay(store / "x.qcow2", name)
    out = tmp_path / "x.raw"
    with pytest.raises(ReferenceRefused, match="outside the image store") as refused:
        convert_with(StoreReferences(store), overlay, out)
    assert_tells_nothing(refused.value, tmp_path, SECRET, referrer=overlay)
    assert not out.exists()
    # The same file on the user's own machine: their backing file is read, as qemu reads it.
    convert_with(FOLLOW_ANYWHERE, overlay, out)
    assert out.read_bytes()[:len(SECRET)] == SECRET
    # And where nobody said, nothing is followed.
    with pytest.raises(ReferenceRefused, match="only standalone images"):
        convert_with(STANDALONE, overlay, tmp_path / "y.raw")


def test_store_follows_the_bare_name_of_another_stored_image(layout: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    store, _ = layout
    base = store / "base.raw"
    base.write_bytes(bytes(range(256)) * 4096)
    overlay = qemu_overlay(store / "over.qcow2", "base.raw")
    image = open_image(str(overlay), references=StoreReferences(store))
    try:
        assert [p.path for p in image.chain()[1:]] == [str(base)]  # type: ignore[union-attr]
    finally:
        image.close()
    out = tmp_path / "flat.raw"
    convert_with(StoreReferences(store), overlay, out)
    assert out.read_bytes() == base.read_bytes()


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_store_refuses_a_symbolic_link_even_to_a_stored_image(layout: tuple[Path, Path],
                                                              tmp_path: Path,
                                                              target: str) -> None:
    store, secret = layout
    (store / "base.raw").write_bytes(b"\1" * MIB)
    (store / "link.raw").symlink_to(secret if target == "outside" else store / "base.raw")
    overlay = qemu_overlay(store / "x.qcow2", "link.raw")
    with pytest.raises(ReferenceRefused, match="symbolic link") as refused:
        convert_with(StoreReferences(store), overlay, tmp_path / "x.raw")
    assert_tells_nothing(refused.value, tmp_path, SECRET, referrer=overlay)


def test_store_refuses_what_is_not_a_regular_file(layout: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    store, _ = layout
    os.mkfifo(store / "pipe.raw")  # opening it for reading would wait for a writer forever
    (store / "dir.raw").mkdir()
    for name in ("pipe.raw", "dir.raw"):
        overlay = qemu_overlay(store / f"over-{name}.qcow2", name)
        with pytest.raises(ReferenceRefused, match="not a regular file"):
            convert_with(StoreReferences(store), overlay, tmp_path / "x.raw")


def test_a_missing_stored_backing_file_is_named_by_its_bare_name(layout: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    store, _ = layout
    overlay = qemu_overlay(store / "x.qcow2", "gone.raw")
    with pytest.raises(ImageError, match=r"'gone\.raw' is not in the image store"):
        convert_with(StoreReferences(store), overlay, tmp_path / "x.raw")


def test_store_refuses_a_differencing_vhd_whose_parent_is_outside(
        layout: tuple[Path, Path], tmp_path: Path) -> None:
    store, _ = layout
    raw = tmp_path / "config" / "secret.raw"
    raw.write_bytes(SECRET * 1000)
    raw.write_bytes(raw.read_bytes().ljust(4 * MIB, b"\0"))
    outside = convert_to(raw, tmp_path / "config" / "secret.vhd")
    parent_uuid = footer_of(outside).uuid
    for locator, parent_name in ((str(outside), "/nowhere/x.vhd"),
                                 ("../../config/secret.vhd", "/nowhere/x.vhd"),
                                 ("/etc/shadow", "/etc/shadow")):
        child = store / "child.vhd"
        make_child(outside, child, block=1, sectors=range(1), byte=0xEE, locator=locator,
                   parent_name=parent_name)
        with pytest.raises(ImageError) as refused:
            convert_with(StoreReferences(store), child, tmp_path / "out.raw")
        assert_tells_nothing(refused.value, tmp_path, SECRET, b"root:", uuids=(parent_uuid,),
                             referrer=child)
    # Read locally, the chain is followed, and the UUID check still holds.
    make_child(outside, child, block=1, sectors=range(1), byte=0xEE, locator=str(outside))
    out = tmp_path / "out.raw"
    convert_with(FOLLOW_ANYWHERE, child, out)
    assert out.read_bytes()[:len(SECRET)] == SECRET


def test_store_follows_a_differencing_vhd_to_a_stored_parent(layout: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    store, _ = layout
    raw = tmp_path / "base.raw"
    raw.write_bytes(b"\7" * (4 * MIB))
    parent = convert_to(raw, store / "parent.vhd")
    child = store / "child.vhd"
    # The locator, as vhd-util writes it, is relative ("./parent.vhd"): not a bare name; the
    # header's parent name is, and resolves in the store.
    make_child(parent, child, block=1, sectors=range(8), byte=0xEE)
    out = tmp_path / "out.raw"
    convert_with(StoreReferences(store), child, out)
    data = out.read_bytes()
    assert data[2 * MIB:2 * MIB + 4096] == b"\xee" * 4096
    assert data[:MIB] == b"\7" * MIB
    # A parent of the right name but another identity: refused, and neither UUID is told.
    convert_to(raw, parent)
    with pytest.raises(ImageError, match="not the one the header names") as refused:
        convert_with(StoreReferences(store), child, out)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", str(refused.value))


@pytest.mark.parametrize("references", [FOLLOW_ANYWHERE, StoreReferences("/"), STANDALONE],
                         ids=["local", "store", "default"])
def test_a_disk_inside_an_archive_never_names_a_file(layout: tuple[Path, Path],
                                                     tmp_path: Path,
                                                     references: References) -> None:
    store, secret = layout
    overlay = qemu_overlay(tmp_path / "root.qcow2", "../../config/admin-password")
    # The archive also holds a file of the name, so "beside the disk" could mean inside it.
    ova = ova_holding(store / "x.ova", "root.qcow2", overlay.read_bytes(), MIB)
    with pytest.raises(ReferenceRefused, match="inside an archive") as refused:
        convert_with(references, ova, tmp_path / "x.raw")
    assert_tells_nothing(refused.value, tmp_path, SECRET, referrer=ova)
    with pytest.raises(ReferenceRefused):
        compare_images(str(ova), str(secret), references=references)


def test_the_local_cli_follows_backing_files(layout: tuple[Path, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = layout
    overlay = qemu_overlay(store / "x.qcow2", "../../config/admin-password")
    out = tmp_path / "x.raw"
    r = run_cli(capsys, "image", "convert", str(overlay), str(out), "--quiet", "--verify")
    assert r.code == 0, r.err
    assert out.read_bytes()[:len(SECRET)] == SECRET
    r = run_cli(capsys, "image", "info", str(overlay), "--json")
    assert r.code == 0 and "admin-password" in r.out, r.err
    r = run_cli(capsys, "image", "check", str(overlay))
    assert r.code == 0, r.out + r.err
