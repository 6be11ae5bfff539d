"""A pinned certificate is stored as its certificates alone: the pool master's
/etc/xensource/xapi-ssl.pem, which the API's hint names, holds the master's private key
before its certificate, and the database (its backups, other PostgreSQL users) is not
where that key may go, in plain text beside the encrypted passwords."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from glasspane.inventory.db import Database
from tests.api.conftest import login


def key_and_certificate(directory: Path) -> tuple[str, str]:
    key, cert = directory / "xapi.key", directory / "xapi.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=xcp", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key.read_text(), cert.read_text()


def test_the_private_key_of_a_pasted_xapi_ssl_pem_is_not_stored(
        client: TestClient, database: Database, tmp_path: Path) -> None:
    key, cert = key_and_certificate(tmp_path)
    response = client.post("/api/v1/hosts?wait=false", headers=login(client, "ada"), json={
        "name": "xcp", "uri": "https://xcp1.example.com", "driver": "xenapi",
        "user": "root", "password": "pool-s3cret", "check": False,
        "ca_pem": key + cert})  # xapi-ssl.pem as it is on the pool master
    assert response.status_code == 201, response.text
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT ca_pem FROM host_registrations "
                                         "WHERE name = 'xcp'")).scalar_one()
    assert "PRIVATE KEY" not in stored and key.splitlines()[1] not in stored
    assert stored.strip() == cert.strip()  # the certificate stays pinned
