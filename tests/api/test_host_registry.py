"""Registered hosts live in the inventory database: every instance sharing one PostgreSQL
database sees the same hosts, and their passwords are stored encrypted, readable only with
the key file (0600) every such instance shares.  A missing or wrong key is a clear error
naming the file and what to do, never a traceback or a silent empty password."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from glasspane.errors import Unavailable, UsageError
from glasspane.hosts.registry import HostRecord, HostRegistry
from glasspane.hosts.secrets import KEY_FILE
from glasspane.inventory.db import Database
from glasspane.settings import Settings
from tests.cli.runner import run_cli

XCP = HostRecord("xcp", "https://xcp1.example.com", "xenapi", "root")
PASSWORD = "pool-s3cret"


def instance(settings: Settings, tmp_path: Path, name: str) -> Settings:
    """Another glasspane: its own configuration directory (and so its own key file)."""
    return dataclasses.replace(settings, config_dir=tmp_path / name / "config")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_instances_sharing_postgresql_see_the_same_hosts(
        database_url: str, settings: Settings, tmp_path: Path) -> None:
    first_settings = instance(settings, tmp_path, "first")
    second_settings = instance(settings, tmp_path, "second")
    first, second = Database.open(first_settings, database_url), \
        Database.open(second_settings, database_url)
    try:
        one, other = HostRegistry(first_settings, first), HostRegistry(second_settings, second)
        one.add(HostRecord("kvm2", "qemu+ssh://root@kvm2.example.com/system"))
        one.add(XCP, PASSWORD)
        assert [r.name for r in other.all()] == ["local", "kvm2", "xcp"]
        assert other.get("kvm2").uri == "qemu+ssh://root@kvm2.example.com/system"

        # The second has no key yet: a clear refusal, naming the file and what to do.
        with pytest.raises(Unavailable) as missing:
            other.password("xcp")
        assert KEY_FILE in str(missing.value) and "copy it" in str(missing.value)
        assert str(tmp_path) not in str(missing.value)  # the API shows it: no server path
        # Nor does it make a key of its own, which could not read the first's passwords.
        with pytest.raises(Unavailable):
            other.add(dataclasses.replace(XCP, name="xcp2"), "other-password")
        assert not (second_settings.config_dir / KEY_FILE).exists()

        # A key of another instance: said so, not a garbled or empty password.
        second_settings.config_dir.mkdir(parents=True)
        (second_settings.config_dir / KEY_FILE).write_text(Fernet.generate_key().decode())
        with pytest.raises(Unavailable) as wrong:
            other.password("xcp")
        assert "another key" in str(wrong.value) and KEY_FILE in str(wrong.value)

        shutil.copy(first_settings.config_dir / KEY_FILE, second_settings.config_dir)
        assert other.password("xcp") == PASSWORD
        other.remove("kvm2")
        assert [r.name for r in one.all()] == ["local", "xcp"]
        with pytest.raises(UsageError, match="already registered"):
            other.add(XCP, PASSWORD)
    finally:
        first.close()
        second.close()


def test_a_stored_password_is_not_plaintext_and_its_key_is_private(
        database: Database, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    previous = os.umask(0o022)  # as many accounts have: what is made is readable by all
    try:
        with caplog.at_level(logging.DEBUG):
            HostRegistry(settings, database).add(XCP, PASSWORD)
    finally:
        os.umask(previous)
    key_file = settings.config_dir / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.config_dir.stat().st_mode) == 0o700
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT password FROM host_registrations "
                                         "WHERE name = 'xcp'")).scalar_one()
    assert PASSWORD not in stored
    assert Fernet(key_file.read_text().strip().encode()).decrypt(stored.encode()) == \
        PASSWORD.encode()
    assert HostRegistry(settings, database).password("xcp") == PASSWORD
    assert key_file.read_text().strip() not in caplog.text and PASSWORD not in caplog.text


def test_key_rotation(database: Database, settings: Settings) -> None:
    registry = HostRegistry(settings, database)
    registry.add(XCP, PASSWORD)
    key_file = settings.config_dir / KEY_FILE
    old = key_file.read_text().strip()
    key_file.write_text(f"{Fernet.generate_key().decode()}\n{old}\n")
    assert registry.password("xcp") == PASSWORD  # the old key still reads
    assert registry.rotate_secrets() == 1
    key_file.write_text(key_file.read_text().split()[0] + "\n")  # the old key dropped
    assert registry.password("xcp") == PASSWORD


def test_the_cli_says_what_to_do_without_the_key(
        capsys: pytest.CaptureFixture[str], database: Database, settings: Settings) -> None:
    HostRegistry(settings, database).add(XCP, PASSWORD)
    (settings.config_dir / KEY_FILE).unlink()
    result = run_cli(capsys, "host", "info", "xcp")
    assert result.code == 9, result
    assert KEY_FILE in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
