"""`glasspane host|user|task` run the catalogue's operations: here on the inventory --database
names, through --server on a real served API, with the same commands and the same answers;
their routes keep their statuses and audit actions."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from glasspane.api.app import create_app
from glasspane.api.middleware import API
from glasspane.cli import operations as ops
from glasspane.inventory.db import Database
from glasspane.inventory.models import AuditEntry, User
from glasspane.inventory.users import authenticate, user_for_token
from glasspane.operations.catalogue import CATALOGUE
from glasspane.settings import Settings
from tests.api.conftest import login, serve
from tests.cli.runner import run_cli

NOUNS = ("host_", "user_", "task_", "logout")


def test_hosts_users_and_tasks_have_no_methods_of_their_own() -> None:
    """Each is one operation of the catalogue, run by `run` on either side (following a
    task to its end is the one thing the CLI does itself)."""
    own = [name for name in vars(ops.Operations) if name.startswith(NOUNS)]
    assert own == ["task_wait"]
    ops.operation_named("host.add")  # fills the catalogue
    for name in ("host.add", "host.info", "host.remove", "host.list", "user.list", "user.add",
                 "user.token", "user.remove", "user.passwd", "password.change", "task.list",
                 "task.show", "task.cancel", "logout"):
        assert name in CATALOGUE, name


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_users_here_on_the_database_named(capsys: pytest.CaptureFixture[str],
                                          database: Database, database_url: str,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.delenv("GLASSPANE_DATABASE_URL")  # only --database names it
    where = ("--database", database_url)
    password = tmp_path / "pw"
    password.write_text("short\n")
    r = run_cli(capsys, "user", "add", "nina", "--role", "viewer", "--password-file",
                str(password), *where)
    assert r.code == 2 and "user.add: password:" in r.err and r.err.count("\n") == 1, r.err
    assert "short" not in r.err  # the refused value is not repeated
    password.write_text("nina-first-password\n")
    r = run_cli(capsys, "user", "add", "nina", "--role", "viewer", "--password-file",
                str(password), *where)
    assert r.code == 0 and r.out == "added viewer nina\n", r.err
    r = run_cli(capsys, "user", "list", *where)
    assert "nina  viewer\n" in r.out and "ada  admin\n" in r.out
    r = run_cli(capsys, "user", "token", "nina", "--label", "ci", "--days", "2", *where)
    secret = r.out.strip()
    assert r.code == 0 and secret.startswith("gp_")
    with database.session() as session:
        found = user_for_token(session, secret)
        assert found is not None and found.name == "nina"
    password.write_text("nina-second-password\n")
    r = run_cli(capsys, "user", "passwd", "nina", "--password-file", str(password), *where)
    assert r.code == 0 and r.out == "changed the password of nina (1 tokens revoked)\n"
    with database.session() as session:
        assert user_for_token(session, secret) is None
        assert authenticate(session, "nina", "nina-second-password") is not None
    # One's own password is a server's matter: refused before anything is asked.
    r = run_cli(capsys, "user", "passwd", *where)
    assert r.code == 2 and "password.change is done by a glasspane server (name the user" \
        in r.err, r.err
    assert run_cli(capsys, "user", "remove", "nina", *where).code == 0
    r = run_cli(capsys, "user", "remove", "nina", *where)
    assert r.code == 6 and "no user named 'nina'" in r.err
    with database.session() as session:
        assert session.scalar(select(User).where(User.name == "nina")) is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_same_commands_through_a_server(capsys: pytest.CaptureFixture[str],
                                            settings: Settings, database: Database,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    server = serve(create_app(settings, database, background=False))
    try:
        url = server.url
        with httpx.Client(base_url=url) as client:
            token = login(client, "ada")["Authorization"].split()[1]
        monkeypatch.setenv("GLASSPANE_TOKEN", token)
        password = tmp_path / "pw"
        password.write_text("nina-first-password\n")
        r = run_cli(capsys, "--server", url, "user", "add", "nina", "--role", "viewer",
                    "--password-file", str(password))
        assert r.code == 0 and r.out == f"added viewer nina on {url}\n", r.err
        r = run_cli(capsys, "--server", url, "user", "token", "nina", "--label", "ci")
        secret = r.out.strip()
        nina = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{url}{API}/auth/me", headers=nina).json()["name"] == "nina"
        r = run_cli(capsys, "--server", url, "user", "list")
        assert "nina  viewer\n" in r.out
        r = run_cli(capsys, "--server", url, "user", "remove", "ada")
        assert r.code == 2 and "you cannot remove yourself" in r.err
        assert run_cli(capsys, "--server", url, "user", "remove", "nina").code == 0
        # Its token is refused at once: the server's cache of tokens was told.
        assert httpx.get(f"{url}{API}/auth/me", headers=nina).status_code == 401

        r = run_cli(capsys, "--server", url, "host", "list", "--json")
        assert [h["name"] for h in json.loads(r.out)] == ["local"]
        r = run_cli(capsys, "--server", url, "host", "info", "nope")
        assert r.code == 6 and "no host named 'nope'" in r.err
        r = run_cli(capsys, "--server", url, "host", "add", "--no-check", "kvm9",
                    "qemu+ssh://root@kvm9/system")
        assert r.code == 0 and "added host kvm9: qemu+ssh://root@kvm9/system" in r.out, r.err
        r = run_cli(capsys, "--server", url, "host", "remove", "kvm9")
        assert r.code == 0 and "kvm9" not in run_cli(capsys, "--server", url, "host",
                                                     "list").out

        r = run_cli(capsys, "--server", url, "task", "list", "--json")
        assert r.code == 0 and json.loads(r.out) == []
        for verb in ("show", "cancel"):
            r = run_cli(capsys, "--server", url, "task", verb, "99999")
            assert r.code == 6 and "no task 99999" in r.err, (verb, r.err)
        r = run_cli(capsys, "--server", url, "task", "show", "0")
        assert r.code == 2 and "task_id" in r.err  # refused here, before any call
        assert run_cli(capsys, "--server", url, "logout").code == 0
        assert httpx.get(f"{url}{API}/auth/me",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        server.stop()
    with database.session() as session:
        actions = {(e.action, e.object_name, e.status_code)
                   for e in session.scalars(select(AuditEntry))}
    assert {("user.add", "nina", 201), ("token.add", "nina", 201),
            ("user.remove", "nina", 200), ("user.remove", "ada", 400),
            ("host.add", "kvm9", 201), ("host.remove", "kvm9", 200),
            ("task.cancel", "99999", 404), ("logout", "ada", 200)} <= actions, actions


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_certificate_that_is_not_ascii_is_refused_not_a_crash(
        client: TestClient, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A PEM is ASCII: anything else is the caller's mistake (400, exit 2), not a 500."""
    body = {"name": "xcp", "uri": "https://127.0.0.1:1", "driver": "xenapi", "user": "root",
            "password": "pw", "check": False,
            "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIé\n-----END CERTIFICATE-----\n"}
    refused = client.post(f"{API}/hosts", headers=login(client, "ada"), json=body)
    assert refused.status_code == 400, refused.text
    assert "not a usable PEM certificate" in refused.json()["detail"]
    garbage, password = tmp_path / "ca.pem", tmp_path / "pw"
    garbage.write_bytes(b"\x00\xff\xfe not a certificate")
    password.write_text("pw\n")
    r = run_cli(capsys, "host", "add", "--no-check", "xcp", "https://127.0.0.1:1", "--driver",
                "xenapi", "--user", "root", "--password-file", str(password), "--ca-file",
                str(garbage))
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert "the pinned certificate is not a usable PEM certificate" in r.err
    assert "xcp" not in run_cli(capsys, "host", "list").out
