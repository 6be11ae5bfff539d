"""The server's own files that its options name, wherever they are (a TLS key, a database
password file, an SQLite database outside glasspane's directories), are empty inside the
playbook sandbox: a playbook's lookups run there, and read what the sandbox's user may."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from pathlib import Path

from glasspane.cli.serve import _secret_files
from glasspane.guests.sandbox import HIDDEN, Sandbox
from glasspane.inventory.db import Database
from glasspane.settings import Settings


def outside_the_hidden() -> Path:
    """A writable directory outside every directory the sandbox empties anyway (/tmp, /home,
    /root, /var, ...), where a server's named files could be: the checkout when it is there,
    else /opt or /usr/local (a clone in /tmp or a home is hidden whole)."""
    checkout = Path(__file__).resolve().parents[2]
    for place in (checkout, Path("/opt"), Path("/usr/local")):
        hidden = any(place.is_relative_to(h) or place.resolve().is_relative_to(h)
                     for h in HIDDEN)
        if not hidden and place.is_dir() and os.access(place, os.W_OK):
            return place
    raise AssertionError("no writable directory outside the sandbox's hidden ones: run the "
                         "tests as root or from a checkout outside /tmp, /home and /root")


def test_the_servers_named_files_are_empty_in_the_sandbox(settings: Settings) -> None:
    with tempfile.TemporaryDirectory(dir=outside_the_hidden(), prefix=".sandbox-test-") as place:
        key, db_file = Path(place) / "server.key", Path(place) / "inventory.db"
        key.write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
        database = Database.open(settings, f"sqlite:///{db_file}")
        try:
            files = _secret_files(database, key)
            assert set(files) == {key, db_file}
            for path in (Path(place), key, db_file):  # readable by anyone: only hiding helps
                path.chmod(0o755 if path.is_dir() else 0o644)
            control = Path(place) / "not-the-servers.txt"  # the same place, not named
            control.write_text("anyone's\n")
            control.chmod(0o644)
            sandbox = Sandbox.for_settings(dataclasses.replace(settings, secret_files=files))
            sandbox.check()

            def read(path: Path) -> subprocess.CompletedProcess[bytes]:
                return subprocess.run(sandbox.command(None, ["cat", str(path)]),
                                      env=sandbox.environment({}), capture_output=True,
                                      timeout=60, check=False)
            assert read(control).stdout == b"anyone's\n"
            shown = read(key)
            assert b"secret" not in shown.stdout, shown
            assert read(db_file).stdout in (b"", None), "the database was read"
        finally:
            database.close()
