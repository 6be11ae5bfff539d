"""The schema the migrations make is the one the models describe, on both databases: a
column or index added to a model without its migration (or the reverse) fails here.  And
the upgrade to hosts in the database imports an earlier version's hosts.json."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from glasspane.errors import UsageError
from glasspane.hosts.registry import HostRegistry
from glasspane.inventory.db import MIGRATIONS, Database
from glasspane.inventory.models import Base
from glasspane.settings import Settings, private_dir


def test_migrations_match_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def upgrade_to(database: Database, revision: str) -> None:
    """The schema of an earlier version, made as that version made it."""
    from alembic import command
    from alembic.config import Config
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_the_upgrade_imports_hosts_json(database_url: str, settings: Settings,
                                        tmp_path: Path) -> None:
    """An instance of the version before: hosts.json, the passwords apart, a pinned
    certificate copied into certs/.  Its upgrade brings them into the database, once."""
    earlier = Database(database_url)
    upgrade_to(earlier, "0004")
    earlier.close()
    config = private_dir(settings.config_dir)
    private_dir(config / "certs")
    pem = certificate(tmp_path)
    (config / "certs" / "xcp.pem").write_text(pem)
    (config / "hosts.json").write_text(json.dumps({"hosts": [
        {"name": "kvm2", "uri": "qemu+ssh://root@kvm2.example.com/system",
         "driver": "libvirt", "user": "", "verify_tls": True, "ca_file": ""},
        {"name": "xcp", "uri": "https://xcp1.example.com", "driver": "xenapi",
         "user": "root", "verify_tls": True, "ca_file": str(config / "certs" / "xcp.pem")}]}))
    (config / "host-secrets.json").write_text(json.dumps({"xcp": "pool-s3cret"}))

    upgraded = Database.open(settings, database_url)
    try:
        registry = HostRegistry(settings, upgraded)
        assert [r.name for r in registry.all()] == ["local", "kvm2", "xcp"]
        xcp = registry.get("xcp")
        assert (xcp.driver, xcp.user, xcp.verify_tls, xcp.ca_pem) == \
            ("xenapi", "root", True, pem)
        assert registry.password("xcp") == "pool-s3cret"
        assert registry.password("kvm2") == ""
        with upgraded.engine.connect() as connection:
            stored = connection.execute(text("SELECT password FROM host_registrations "
                                             "WHERE name = 'xcp'")).scalar_one()
        assert "pool-s3cret" not in stored
        # Retired: nothing is imported twice, and no plain password stays on disk.
        assert sorted(p.name for p in config.iterdir()) == \
            ["host-secrets.key", "hosts.json.imported"]
        assert stat.S_IMODE((config / "host-secrets.key").stat().st_mode) == 0o600
        registry.remove("kvm2")
    finally:
        upgraded.close()
    again = Database.open(settings, database_url)
    try:
        assert [r.name for r in HostRegistry(settings, again).all()] == ["local", "xcp"]
    finally:
        again.close()


def test_a_migration_without_a_configuration_directory_only_makes_the_tables(
        database_url: str, settings: Settings) -> None:
    config = private_dir(settings.config_dir)
    (config / "hosts.json").write_text(json.dumps({"hosts": [
        {"name": "kvm2", "uri": "qemu+ssh://root@kvm2.example.com/system"}]}))
    bare = Database(database_url)
    try:
        bare.migrate()
        assert [r.name for r in HostRegistry(settings, bare).all()] == ["local"]
        assert (config / "hosts.json").exists()
        # The instance's own start then imports it (its database already upgraded).
        bare.migrate(config)
        assert [r.name for r in HostRegistry(settings, bare).all()] == ["local", "kvm2"]
        assert not (config / "hosts.json").exists()
    finally:
        bare.close()


def test_an_unreadable_hosts_json_stops_the_upgrade_with_what_to_do(
        database_url: str, settings: Settings) -> None:
    config = private_dir(settings.config_dir)
    (config / "hosts.json").write_text("{not json")
    with pytest.raises(UsageError) as refused:
        Database.open(settings, database_url)
    assert "hosts.json" in str(refused.value) and "move it aside" in str(refused.value)
    assert str(config) not in str(refused.value)
    (config / "hosts.json").unlink()
    Database.open(settings, database_url).close()  # nothing half-done was left


def certificate(directory: Path) -> str:
    key, cert = directory / "xcp.key", directory / "xcp-cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=xcp", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert.read_text()


@pytest.mark.parametrize("entry, refused", [
    # What `host add` refuses is refused on import too: hosts.json is imported into the
    # database every instance shares, so one instance's file must not register for all of
    # them a host the registry would never accept.
    ({"name": "Bad Name", "uri": "qemu+ssh://root@kvm2.example.com/system"}, "host name"),
    ({"name": "kvm2", "uri": "qemu+ext:///system?command=/tmp/run-me"}, "ext transport"),
    ({"name": "kvm2", "uri": "qemu+ssh://root@kvm2.example.com/system",
      "driver": "bhyve"}, "unknown driver"),
    ({"name": "kvm2", "uri": "qemu+ssh://root@kvm2.example.com/system",
      "user": "u" * 200}, "user name"),
    # A "pinned certificate" that is any file of the server's: not read into the database.
    ({"name": "xcp", "uri": "https://xcp1.example.com", "driver": "xenapi",
      "user": "root", "ca_file": "/etc/passwd"}, "certificate"),
])
def test_the_upgrade_refuses_a_host_the_registry_would_refuse(
        database_url: str, settings: Settings, entry: dict[str, str], refused: str) -> None:
    config = private_dir(settings.config_dir)
    (config / "hosts.json").write_text(json.dumps({"hosts": [entry]}))
    with pytest.raises(UsageError) as raised:
        Database.open(settings, database_url)
    message = str(raised.value)
    assert refused in message and "hosts.json" in message, message
    assert str(config) not in message and "root:" not in message
    assert (config / "hosts.json").exists()  # nothing retired, nothing imported
    (config / "hosts.json").unlink()
    with Database.open(settings, database_url).session() as session:
        assert session.scalar(text("SELECT count(*) FROM host_registrations")) == 0
