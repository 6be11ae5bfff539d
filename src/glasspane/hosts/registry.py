"""The registered hosts, kept in the inventory database (table `host_registrations`), so that
every glasspane sharing one PostgreSQL database sees the same hosts; their passwords are
encrypted there with the key file of glasspane.hosts.secrets.  The local libvirt host is
always there, as `local`, without a row.

A table of its own rather than columns on `hosts`: `hosts` is the inventory's view, made
and rewritten by the sync from what the drivers say, shown to every user (its URI redacted),
and deleted, with its VMs' rows, when a pass finds the host no longer registered.  A
registration is an admin's configuration, with credentials: it exists before any pass has
looked and whatever a pass finds, and is never shown as stored.  Kept apart, no listing can
carry a secret or an unredacted URI, and the sync never writes credentials.

An earlier version's hosts.json is imported on upgrade (glasspane.hosts.legacy)."""

from __future__ import annotations

import dataclasses
import re
import ssl
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glasspane.errors import NotFound, UsageError
from glasspane.hosts.secrets import SecretBox
from glasspane.hypervisors.uris import check_uri
from glasspane.inventory.db import Database, shared
from glasspane.inventory.models import HostRegistration
from glasspane.settings import Settings

DRIVERS = ("libvirt", "xenapi")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
HOST_NAME = _NAME  # what a host may be called (the API checks it too)
URI_SIZE, USER_SIZE = 512, 128  # the table's columns


@dataclass(frozen=True)
class HostRecord:
    name: str
    uri: str
    driver: str = "libvirt"
    user: str = ""           # xenapi: the XAPI user (the password is apart: password())
    verify_tls: bool = True  # xenapi over https: check the pool master's certificate
    ca_pem: str = field(default="", repr=False)  # xenapi over https: the pinned certificate


LOCAL = HostRecord("local", "qemu:///system")


def _record(row: HostRegistration) -> HostRecord:
    return HostRecord(row.name, row.uri, row.driver, row.user, row.verify_tls,
                      row.ca_pem or "")


class HostRegistry:
    """The hosts registered in `database` (by default the settings' own: db.shared()); the
    key file is in the settings' configuration directory."""

    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self.settings = settings
        self._database = database
        self.secrets = SecretBox(settings.config_dir)

    @property
    def database(self) -> Database:
        # Opened on first use: the local host needs no database.
        if self._database is None:
            self._database = shared(self.settings)
        return self._database

    def all(self) -> list[HostRecord]:
        with self.database.session() as session:
            rows = session.scalars(select(HostRegistration).order_by(HostRegistration.id))
            return [LOCAL, *(_record(row) for row in rows)]

    def get(self, name: str) -> HostRecord:
        if name == LOCAL.name:
            return LOCAL
        with self.database.session() as session:
            row = session.scalar(select(HostRegistration)
                                 .where(HostRegistration.name == name))
            if row is None:
                raise NotFound(f"no host named {name!r}",
                               hint="`glasspane host list` shows the registered hosts")
            return _record(row)

    def password(self, name: str) -> str:
        """The host's password ("" if it has none), decrypted."""
        with self.database.session() as session:
            token = session.scalar(select(HostRegistration.password)
                                   .where(HostRegistration.name == name))
        return self.secrets.decrypt(token) if token else ""

    def add(self, record: HostRecord, password: str | None = None) -> None:
        record = dataclasses.replace(record, ca_pem=certificates(record.ca_pem))
        self.check_new(record)
        with self.database.session() as session:
            token = None
            if password:
                held = session.scalar(select(func.count()).select_from(HostRegistration)
                                      .where(HostRegistration.password.is_not(None)))
                token = self.secrets.encrypt(password, create=not held)
            session.add(HostRegistration(
                name=record.name, uri=record.uri, driver=record.driver, user=record.user,
                verify_tls=record.verify_tls, ca_pem=record.ca_pem or None, password=token))
            try:
                session.flush()
            except IntegrityError:  # registered meanwhile, by another instance perhaps
                # No cause: it quotes the row, encrypted password and certificate included.
                raise UsageError(f"a host named {record.name!r} is already registered"
                                 ) from None

    def check_new(self, record: HostRecord) -> None:
        """Raise UsageError unless `record` could be added."""
        check_record(record)
        if any(r.name == record.name for r in self.all()):
            raise UsageError(f"a host named {record.name!r} is already registered")

    def remove(self, name: str) -> None:
        """Forget the host and its credentials."""
        if name == LOCAL.name:
            raise UsageError("the local host is built in and cannot be removed")
        with self.database.session() as session:
            row = session.scalar(select(HostRegistration)
                                 .where(HostRegistration.name == name))
            if row is None:
                raise NotFound(f"no host named {name!r}")
            session.delete(row)

    def rotate_secrets(self) -> int:
        """Every stored password encrypted again with the key file's first key (see
        glasspane.hosts.secrets); how many."""
        with self.database.session() as session:
            rows = session.scalars(select(HostRegistration)
                                   .where(HostRegistration.password.is_not(None))).all()
            for row in rows:
                row.password = self.secrets.rotate(row.password or "")
            return len(rows)


def check_record(record: HostRecord) -> None:
    """Raise UsageError unless the registry would accept `record` (whatever it holds
    already): what `host add` is held to, and an earlier version's hosts.json on import."""
    if not _NAME.match(record.name):
        raise UsageError(f"invalid host name {record.name!r}",
                         hint="lowercase letters, digits, '.', '_' and '-'")
    if record.driver not in DRIVERS:
        raise UsageError(f"unknown driver {record.driver!r} (one of {', '.join(DRIVERS)})")
    if len(record.uri) > URI_SIZE:
        raise UsageError(f"host {record.name}: the URI is longer than {URI_SIZE} "
                         "characters")
    check_uri(record.uri, record.driver)
    if len(record.user) > USER_SIZE:
        raise UsageError(f"host {record.name}: the user name is longer than {USER_SIZE} "
                         "characters")
    if record.ca_pem:
        _check_pem(record)


def registered(session: Session, name: str) -> bool:
    """Whether host `name` is registered, seen from `session`'s transaction."""
    return name == LOCAL.name or session.scalar(
        select(HostRegistration.id).where(HostRegistration.name == name)) is not None


def certificates(pem: str) -> str:
    """The certificates of `pem` alone: the pool master's xapi-ssl.pem holds its private key
    too, which the database (stored as it is, unencrypted) must not get.  Text that holds
    no certificate is given back for _check_pem to refuse."""
    found = _CERTIFICATE.findall(pem)
    return "".join(block + "\n" for block in found) if found else pem


_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]*?"
                          r"-----END CERTIFICATE-----")


def _check_pem(record: HostRecord) -> None:
    try:
        ssl.create_default_context(cadata=record.ca_pem)
    except (ssl.SSLError, ValueError, TypeError) as exc:  # TypeError: not ASCII
        reason = getattr(exc, "reason", None) or "no certificate found"
        raise UsageError(f"host {record.name}: the pinned certificate is not a usable PEM "
                         f"certificate: {reason}",
                         hint="the pool master's /etc/xensource/xapi-ssl.pem") from exc
