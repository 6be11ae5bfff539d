"""Changing passwords, against a real server with real tokens: your own with the current
one (checked and rate-limited like a login), anyone's as an admin, `glasspane user passwd`
through --server and locally; every other token of that user dies, and the bootstrap
admin's password file goes with the first change.  And the database's password never on
the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL, make_url

from glasspane.api.app import create_app
from glasspane.inventory.db import Database
from glasspane.inventory.models import ApiToken, AuditEntry
from glasspane.inventory.users import add_user, authenticate, get_user, issue_token
from glasspane.settings import Settings
from tests.api.conftest import PASSWORDS, Server, free_port, login, serve
from tests.cli.runner import run_cli

API = "/api/v1"


@contextmanager
def running(settings: Settings, database: Database) -> Iterator[httpx.Client]:
    server: Server = serve(create_app(settings, database, background=False))
    try:
        with httpx.Client(base_url=server.url) as client:
            yield client
    finally:
        server.stop()


def me(client: httpx.Client, headers: dict[str, str]) -> int:
    # No cookie: each call is the token it names and nothing else.
    client.cookies.clear()
    return client.get(f"{API}/auth/me", headers=headers).status_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_users_change_their_own_password(settings: Settings, database: Database) -> None:
    with running(settings, database) as client:
        caller, elsewhere, admin = login(client, "vera"), login(client, "vera"), \
            login(client, "ada")
        api_token = client.post(f"{API}/users/vera/tokens", headers=admin,
                                json={"name": "ci"}).json()["token"]
        wrong = client.post(f"{API}/auth/password", headers=caller,
                            json={"current": "not-it", "new": "vera-new-password"})
        assert wrong.status_code == 403 and "current password" in wrong.json()["detail"]
        short = client.post(f"{API}/auth/password", headers=caller,
                            json={"current": PASSWORDS["vera"], "new": "short"})
        assert short.status_code == 422
        changed = client.post(f"{API}/auth/password", headers=caller,
                              json={"current": PASSWORDS["vera"], "new": "vera-new-password"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["revoked_tokens"] == 2
        assert me(client, caller) == 200  # the caller's own session stays
        assert me(client, elsewhere) == 401 and me(client, bearer(api_token)) == 401
        assert client.post(f"{API}/auth/login", json={"name": "vera", "password": PASSWORDS["vera"]}
                           ).status_code == 401
        assert client.post(f"{API}/auth/login", json={"name": "vera",
                                                "password": "vera-new-password"}
                           ).status_code == 200
    with database.session() as session:
        outcomes = [(a.action, a.outcome) for a in session.scalars(
            select(AuditEntry).where(AuditEntry.user == "vera").order_by(AuditEntry.id))]
    assert ("password.change", "denied") in outcomes
    assert ("password.change", "succeeded") in outcomes


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_guessing_the_current_password_is_rate_limited(settings: Settings,
                                                       database: Database) -> None:
    with running(settings, database) as client:
        caller = login(client, "otto")
        for _ in range(5):
            assert client.post(f"{API}/auth/password", headers=caller,
                               json={"current": "guess", "new": "otto-new-password"}
                               ).status_code == 403
        limited = client.post(f"{API}/auth/password", headers=caller,
                              json={"current": PASSWORDS["otto"], "new": "otto-new-password"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_an_admin_sets_anyones_password(settings: Settings, database: Database) -> None:
    with running(settings, database) as client:
        first, second, admin = login(client, "otto"), login(client, "otto"), \
            login(client, "ada")
        refused = client.post(f"{API}/users/vera/password", headers=first,
                              json={"password": "vera-new-password"})
        assert refused.status_code == 403 and "needs admin" in refused.json()["detail"]
        done = client.post(f"{API}/users/otto/password", headers=admin,
                           json={"password": "otto-new-password"})
        assert done.status_code == 200 and done.json()["revoked_tokens"] == 2
        assert me(client, first) == 401 and me(client, second) == 401
        assert me(client, admin) == 200
        missing = client.post(f"{API}/users/nobody/password", headers=admin,
                              json={"password": "long-enough"})
        assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
        assert client.post(f"{API}/auth/login", json={"name": "otto",
                                                "password": "otto-new-password"}
                           ).status_code == 200


def test_user_passwd_through_the_server_removes_the_bootstrap_file(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLASSPANE_TOKEN", raising=False)
    monkeypatch.delenv("GLASSPANE_DATABASE_URL", raising=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "glasspane.cli.main", "serve", "--listen", f"127.0.0.1:{port}",
         "--bootstrap-admin"], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                httpx.get(f"{url}{API}/health")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "serve never answered"
                time.sleep(0.1)
        bootstrap = settings.config_dir / "admin-password"
        first, new, wrong = tmp_path / "first", tmp_path / "new", tmp_path / "wrong"
        first.write_text(bootstrap.read_text())
        new.write_text("admin-new-password\n")
        wrong.write_text("not-the-password\n")
        assert run_cli(capsys, "--server", url, "login", "admin", "--password-file",
                       str(first)).code == 0
        elsewhere = bearer(httpx.post(f"{url}{API}/auth/login", json={
            "name": "admin", "password": first.read_text().strip()}).json()["token"])

        r = run_cli(capsys, "--server", url, "user", "passwd", "--password-file", str(new),
                    "--current-password-file", str(wrong))
        assert r.code == 2 and "the current password is not right" in r.err
        assert r.err.count("\n") == 1  # one line
        r = run_cli(capsys, "--server", url, "user", "passwd", "--password-file", str(new),
                    "--current-password-file", str(first))
        assert r.code == 0 and "changed the password of admin" in r.out, r.err
        assert not bootstrap.exists()
        assert httpx.get(f"{url}{API}/auth/me", headers=elsewhere).status_code == 401
        assert run_cli(capsys, "--server", url, "user", "list").code == 0  # the CLI's stays

        nina = tmp_path / "nina"
        nina.write_text("nina-first-password\n")
        assert run_cli(capsys, "--server", url, "user", "add", "nina", "--role", "viewer",
                       "--password-file", str(nina)).code == 0
        nina.write_text("nina-second-password\n")
        r = run_cli(capsys, "--server", url, "user", "passwd", "nina", "--password-file",
                    str(nina))
        assert r.code == 0 and "changed the password of nina" in r.out, r.err
        assert httpx.post(f"{url}{API}/auth/login", json={
            "name": "nina", "password": "nina-second-password"}).status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_user_passwd_locally_with_the_database_password_out_of_argv(
        settings: Settings, database: Database, database_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLASSPANE_DATABASE_URL", raising=False)
    with database.session() as session:
        otto = get_user(session, "otto")
        issue_token(session, otto, "ci")
        add_user(session, "admin", "bootstrap-password", "admin")
    bootstrap = settings.config_dir / "admin-password"
    bootstrap.parent.mkdir(parents=True, exist_ok=True)
    bootstrap.write_text("bootstrap-password\n")
    new = tmp_path / "new"
    new.write_text("otto-new-password\n")

    r = run_cli(capsys, "user", "passwd", "--password-file", str(new))
    assert r.code == 2 and "name the user" in r.err
    url = make_url(database_url)
    if url.password:  # PostgreSQL: the URL's password never on the command line
        r = run_cli(capsys, "user", "passwd", "otto", "--password-file", str(new),
                    "--database", database_url)
        assert r.code == 2 and "can be read by every user" in r.err
        assert database_url not in r.err and f":{url.password}@" not in r.err
        secret = tmp_path / "db-password"
        secret.write_text(url.password + "\n")
        bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database)
        arguments = ["--database", bare.render_as_string(hide_password=False),
                     "--database-password-file", str(secret)]
    else:
        arguments = ["--database", database_url]
    r = run_cli(capsys, "user", "passwd", "otto", "--password-file", str(new), *arguments)
    assert r.code == 0 and "changed the password of otto (1 tokens revoked" in r.out, r.err
    # And from the environment, as the server reads it.
    monkeypatch.setenv("GLASSPANE_DATABASE_URL", database_url)
    r = run_cli(capsys, "user", "passwd", "admin", "--password-file", str(new))
    assert r.code == 0, r.err
    assert not bootstrap.exists()
    with database.session() as session:
        assert authenticate(session, "otto", "otto-new-password") is not None
        assert authenticate(session, "admin", "otto-new-password") is not None
        assert session.scalars(select(ApiToken).where(
            ApiToken.user_id == get_user(session, "otto").id)).all() == []
