"""Shared fixtures.  Unit tests must not shell out; tests that use qemu-img are marked
`integration` and get it from the `qemu_img` fixture, which fails (never skips) when it is
missing, so that a missing install step cannot hide behind a green run."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from glasspane.images.sample import write_sample

# A test waits for the server's answer however loaded the machine is: a late answer is not a
# wrong one.  httpx's own default (5 s) made requests that reach a guest under TCG fail on
# a busy machine.  Tests of the server's deadlines give their clients explicit timeouts.
REPLY = httpx.Timeout(600, connect=60)
for _call in (httpx.Client.__init__, httpx.AsyncClient.__init__, httpx.request, httpx.get,
              httpx.post, httpx.put, httpx.patch, httpx.delete, httpx.head, httpx.options):
    if "timeout" in (_call.__kwdefaults__ or {}):
        _call.__kwdefaults__["timeout"] = REPLY

SAMPLE_SIZE = (24 << 20) + 3 * 512  # not a multiple of any block size, on purpose


@pytest.fixture(scope="session")
def qemu_img() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        pytest.fail("qemu-img is missing: `make test` installs Debian's qemu-utils")
    return path


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "sample.raw"
    write_sample(str(path), SAMPLE_SIZE)
    return path


@pytest.fixture(scope="session")
def qemu_images(tmp_path_factory: pytest.TempPathFactory, qemu_img: str) -> dict[str, Path]:
    from tests.images.make_test_images import make_images
    directory = tmp_path_factory.mktemp("qemu-images")
    return {k: Path(v) for k, v in make_images(str(directory), SAMPLE_SIZE).items()}
