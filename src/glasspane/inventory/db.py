"""The database: SQLite in the user's data directory by default, PostgreSQL (a
`postgresql+psycopg://` URL) for a deployment shared by several glasspane instances.  The schema
is brought to the newest migration at start, under a lock, so instances starting together do
not race.

Registered hosts live here too (glasspane.hosts.registry): code that holds only the settings
reaches the database through `shared()`, which hands back the Database already open for the
settings' URL (the server's own) or opens it once."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from glasspane.errors import UsageError
from glasspane.settings import Settings, private_file

MIGRATIONS = str(Path(__file__).with_name("migrations"))
MIGRATION_LOCK = 0x67_6C_61_73  # the PostgreSQL advisory lock key ("glas")
_opened: dict[str, Database] = {}  # by URL: the databases shared() hands out
_opened_lock = threading.RLock()  # held while shared() opens one


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
        """The database brought to the newest schema, the hosts.json of the settings'
        configuration directory imported (glasspane.hosts.legacy)."""
        database = cls(url or default_url(settings))
        database.migrate(settings.config_dir)
        with _opened_lock:
            _opened.setdefault(database.url, database)
        return database

    def migrate(self, config_dir: Path | None = None) -> None:
        """Upgrade to the newest schema.  With `config_dir`, an existing hosts.json there is
        imported, by migration 0005 or, when another instance already made that upgrade,
        here; its files are retired only once the import has committed."""
        from alembic import command
        from alembic.config import Config

        from glasspane.hosts.legacy import import_hosts_json, retire
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        config.attributes["config_dir"] = config_dir
        with self.engine.begin() as connection:
            if self.is_postgres:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": MIGRATION_LOCK})
            else:
                # The driver would run each CREATE outside any transaction (it begins one
                # only before a write), so an upgrade failing half-way (a hosts.json that
                # cannot be imported) left tables without their revision.  Begun here, the
                # whole upgrade is one transaction, and instances starting together wait.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            if config_dir is not None and not config.attributes.get("imported"):
                config.attributes["retire"] = import_hosts_json(connection, config_dir)
        retire(config.attributes.get("retire", []))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose changes are committed at the end of the block (rolled back on
        an exception)."""
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads alone (the API's listings): no ORM session to set up,
        track and commit around a few SELECTs, which cost a listing more than its SQL."""
        with self.engine.connect() as connection:
            yield connection

    def close(self) -> None:
        with _opened_lock:
            if _opened.get(self.url) is self:
                del _opened[self.url]
        self.engine.dispose()


def shared(settings: Settings) -> Database:
    """The database of `settings` (its database_url, else default_url()): the one already
    open in this process for that URL, or opened (and migrated) now and kept."""
    url = settings.database_url or default_url(settings)
    with _opened_lock:
        found = _opened.get(url)
        return found if found is not None else Database.open(settings, url)


def close_shared() -> None:
    """Close every database shared() could hand out (a test's end: its files go)."""
    with _opened_lock:
        opened = list(_opened.values())
    for database in opened:
        database.close()
