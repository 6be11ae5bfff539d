"""The database: SQLite in the user's data directory by default, PostgreSQL (a
`postgresql+psycopg://` URL) for a deployment shared by several glasspane instances.  The schema
is brought to the newest migration at start, under a lock, so instances starting together do
not race."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from glasspane.errors import UsageError
from glasspane.settings import Settings, private_file

MIGRATIONS = str(Path(__file__).with_name("migrations"))
MIGRATION_LOCK = 0x67_6C_61_73  # the PostgreSQL advisory lock key ("glas")


def default_url(settings: Settings) -> str:
    return os.environ.get("GLASSPANE_DATABASE_URL") or \
        f"sqlite:///{settings.data_dir / 'glasspane.db'}"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # WAL: readers (the API) never wait for the writer (sync, tasks); foreign keys: cascades.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_postgres = url.startswith("postgresql")
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Password and token hashes live here: the owner's eyes only, from the start.
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            try:
                private_file(fd)
            finally:
                os.close(fd)
            # Enough kept connections for every API thread and task at once: an overflow
            # connection is opened (and its pragmas run) anew for each use.
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False,
                                                                   "timeout": 30},
                                                pool_size=20, max_overflow=20)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif self.is_postgres:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10,
                                        max_overflow=20)
        else:
            raise UsageError(f"unsupported database URL {url.split(':', maxsplit=1)[0]}:...",
                             hint="sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings, url: str | None = None) -> Database:
        database = cls(url or default_url(settings))
        database.migrate()
        return database

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        with self.engine.begin() as connection:
            if self.is_postgres:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose changes are committed at the end of the block (rolled back on
        an exception)."""
        with self.sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
