"""The registry of glasspane before hosts lived in the database: `hosts.json`,
`host-secrets.json` (plain passwords) and `certs/NAME.pem` in the configuration directory.
Migration 0005 imports them into `host_registrations` on upgrade, and so does every later
start of an instance whose database another instance already upgraded (each instance had its
own hosts.json).  A name the database already holds keeps the database's registration.

After the transaction commits, hosts.json is renamed `hosts.json.imported` (nothing is
imported twice; it stays as a record), while the plain passwords' file and the copied
certificates are removed: the database holds them now, the passwords encrypted.

The table is written through its own description here, as it was at 0005, not through the
models, which later migrations may change."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from glasspane.errors import UsageError
from glasspane.hosts.registry import HostRecord, certificates, check_record
from glasspane.hosts.secrets import SecretBox
from glasspane.inventory.models import utcnow

log = logging.getLogger("glasspane.hosts")
HOSTS_FILE, SECRETS_FILE = "hosts.json", "host-secrets.json"
IMPORTED = ".imported"

_table = sa.table("host_registrations", sa.column("name"), sa.column("uri"),
                  sa.column("driver"), sa.column("user"), sa.column("verify_tls"),
                  sa.column("ca_pem"), sa.column("password"), sa.column("created_at"))


def import_hosts_json(connection: Connection, config_dir: Path) -> list[Path]:
    """Insert the hosts of `config_dir`'s hosts.json the database does not hold yet; the
    files to retire once the transaction has committed (retire())."""
    path = config_dir / HOSTS_FILE
    if not path.is_file():
        return []
    hosts = _read(path, "hosts")
    secrets_path = config_dir / SECRETS_FILE
    secrets = _read(secrets_path, None) if secrets_path.is_file() else {}
    held = set(connection.scalars(sa.select(_table.c.name)))
    stored = connection.scalar(sa.select(sa.func.count()).select_from(_table)
                               .where(_table.c.password.is_not(None)))
    box = SecretBox(config_dir)
    retired = [path, *([secrets_path] if secrets_path.is_file() else [])]
    for item in hosts:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("uri"), str):
            raise UsageError(f"{HOSTS_FILE} in the configuration directory holds a host "
                             "without a name or URI", hint="fix or remove that entry")
        name = item["name"]
        if name in held or name == "local":
            log.warning("host %s of %s is already registered in the database: that "
                        "registration is kept", name, HOSTS_FILE)
            continue
        pem, cert = _pinned(item.get("ca_file"), name)
        record = HostRecord(name, item["uri"], str(item.get("driver") or "libvirt"),
                            str(item.get("user") or ""), bool(item.get("verify_tls", True)),
                            certificates(pem or ""))
        _check(record)
        if cert is not None and cert.parent == config_dir / "certs":  # glasspane's copy
            retired.append(cert)
        password = secrets.get(name)
        token = box.encrypt(str(password), create=not stored) if password else None
        stored = stored or token is not None
        connection.execute(_table.insert().values(
            name=name, uri=record.uri, driver=record.driver, user=record.user,
            verify_tls=record.verify_tls, ca_pem=record.ca_pem or None, password=token,
            created_at=utcnow()))
        held.add(name)
        log.info("host %s imported from %s", name, HOSTS_FILE)
    return retired


def retire(files: list[Path]) -> None:
    """hosts.json renamed aside; the others (plain passwords, copied certificates) gone."""
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            if path.name == HOSTS_FILE:
                os.replace(path, path.with_name(HOSTS_FILE + IMPORTED))
            else:
                path.unlink()
    with contextlib.suppress(OSError):  # only if emptied
        for path in {p.parent for p in files if p.parent.name == "certs"}:
            path.rmdir()


def _check(record: HostRecord) -> None:
    """What `host add` holds a host to: the database is every instance's, so one instance's
    file must not register there a host the registry would refuse (a URI that runs a program
    here, a "certificate" that is any file of the server's)."""
    try:
        check_record(record)
    except UsageError as exc:
        raise UsageError(f"{HOSTS_FILE} in the configuration directory cannot be imported "
                         f"into the database: {exc.message}",
                         hint="fix or remove that entry") from exc


def _read(path: Path, key: str | None) -> Any:
    try:
        data = json.loads(path.read_text())
        found = data[key] if key is not None else data
        if not isinstance(found, list if key else dict):
            raise ValueError("unexpected structure")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # No cause: hosts.json holds passwords, which a parse error may quote.
        raise UsageError(f"{path.name} in the configuration directory cannot be imported "
                         f"into the database: {type(exc).__name__}",
                         hint="fix it, or move it aside (its hosts are then not "
                              "registered)") from None
    return found


def _pinned(ca_file: object, name: str) -> tuple[str | None, Path | None]:
    """The pinned certificate's PEM and its file, if the host had one."""
    if not isinstance(ca_file, str) or not ca_file:
        return None, None
    cert = Path(ca_file)
    try:
        return cert.read_text(), cert
    except (OSError, ValueError):
        # Imported unpinned, it trusts the system's CAs only: fewer certificates, not more.
        log.warning("host %s: its pinned certificate cannot be read; imported without it "
                    "(`glasspane host remove` and `host add --ca-file` pin it again)", name)
        return None, None
