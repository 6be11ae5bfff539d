"""The settings and database fixtures of the API tests, for the XenAPI tests too; and the
loopback pool most XenAPI tests talk to, with its password in a file as `host add` takes it."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import database, database_url, settings
from tests.xapi.server import Running, Xapi, small_pool, start

__all__ = ["database", "database_url", "password_file", "settings", "xapi"]

POOL_PASSWORD = "s3cret-pool"


@pytest.fixture
def xapi() -> Iterator[Running]:
    running = start(Xapi(password=POOL_PASSWORD))
    small_pool(running.xapi)
    yield running
    running.stop()


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(POOL_PASSWORD + "\n")
    return path
