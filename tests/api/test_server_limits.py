"""The server's own limits, against a real uvicorn server with the product's transport and
real tokens: concurrent password guesses counted at once, proxy headers believed only from
trusted proxies, password hashing bounded, half-sent requests and stalled uploads cut off,
connections and event streams bounded, unauthenticated noise in the audit log bounded and
every field capped (on PostgreSQL too), security headers, no CDN, and HTTPS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from glasspane.api.app import create_app
from glasspane.api.limits import ServerLimits
from glasspane.inventory import users
from glasspane.inventory.db import Database
from glasspane.inventory.models import AuditEntry
from glasspane.settings import Settings
from tests.api.conftest import PASSWORDS, Server, free_port, login, serve
from tests.cli.runner import run_cli
from tests.waiting import wait_for

API = "/api/v1"


@contextmanager
def running(settings: Settings, database: Database, **limits: Any) -> Iterator[Server]:
    server = serve(create_app(settings, database, background=False,
                              limits=ServerLimits(**limits)))
    try:
        yield server
    finally:
        server.stop()


def address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout
    fails the test if it never does)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def wrong_login(url: str, name: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}{API}/auth/login", json={"name": name, "password": "wrong"},
                      headers=headers, timeout=60)


def test_concurrent_wrong_passwords_beyond_the_limit_get_429(
        settings: Settings, database: Database) -> None:
    with running(settings, database) as server, ThreadPoolExecutor(30) as pool:
        statuses = list(pool.map(lambda _: wrong_login(server.url, "otto").status_code,
                                 range(30)))
    # Each attempt is reserved before its hash: the guesses in flight count at once.
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 25, statuses


def test_forwarded_for_is_believed_only_from_trusted_proxies(
        settings: Settings, database: Database) -> None:
    with running(settings, database) as server:
        for i in range(5):
            forged = {"X-Forwarded-For": f"203.0.113.{i}"}
            assert wrong_login(server.url, "vera", forged).status_code == 401
        limited = wrong_login(server.url, "vera", {"X-Forwarded-For": "203.0.113.99"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
        wait_for(lambda: audited_requests(database) == 6, "the audit rows")
    with database.session() as session:
        addresses = set(session.scalars(select(AuditEntry.address)))
    assert addresses == {"127.0.0.1"}  # who connected, not who the header names

    with running(settings, database, trusted_proxies=("127.0.0.1",)) as proxied:
        assert wrong_login(proxied.url, "otto", {"X-Forwarded-For": "198.51.100.7"}
                           ).status_code == 401
        wait_for(lambda: audited_requests(database) == 7, "the audit row")
    with database.session() as session:
        assert session.scalar(select(AuditEntry.address).order_by(AuditEntry.id.desc())
                              .limit(1)) == "198.51.100.7"


def audited_requests(database: Database, user: str | None = None) -> int:
    with database.session() as session:
        query = select(AuditEntry.count)
        if user:
            query = query.where(AuditEntry.user == user)
        return sum(session.scalars(query))


class HeldHasher(PasswordHasher):
    """The real Argon2 hasher, counting the hashes running at once and holding each until
    the test lets them go."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.inside = self.peak = 0
        self.go = threading.Event()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self.lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            self.go.wait(60)
            return super().verify(hash, password)
        finally:
            with self.lock:
                self.inside -= 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_logins_run_a_bounded_number_of_hashes(settings: Settings, database: Database,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = HeldHasher()
    monkeypatch.setattr(users, "_hasher", hasher)
    names = ["ada", "otto", "vera", "ghost-1", "ghost-2", "ghost-3"]

    def attempt(name: str) -> int:
        return httpx.post(f"{server.url}{API}/auth/login", timeout=60,
                          json={"name": name, "password": PASSWORDS.get(name, "wrong")}
                          ).status_code

    with running(settings, database, login_hashes=2, login_wait=60) as server, \
            ThreadPoolExecutor(len(names)) as pool:
        gate = server.app.state.login_gate
        futures = [pool.submit(attempt, name) for name in names]
        wait_for(lambda: gate.running == 2 and gate.waiting == 4, "six logins at the gate")
        assert hasher.inside == 2  # the other four wait, holding no 64 MiB each
        hasher.go.set()
        statuses = [f.result() for f in futures]
    assert statuses == [200, 200, 200, 401, 401, 401]
    assert hasher.peak == 2 and gate.peak == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_logins_past_the_queue_get_503_with_retry_after(
        settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = HeldHasher()
    monkeypatch.setattr(users, "_hasher", hasher)
    with running(settings, database, login_hashes=1, login_queue=1, login_wait=60) as server, \
            ThreadPoolExecutor(2) as pool:
        gate = server.app.state.login_gate
        futures = [pool.submit(lambda n=n: httpx.post(
            f"{server.url}{API}/auth/login", json={"name": n, "password": PASSWORDS[n]},
            timeout=60).status_code) for n in ("ada", "otto")]
        wait_for(lambda: gate.running == 1 and gate.waiting == 1, "a login at the gate")
        busy = httpx.post(f"{server.url}{API}/auth/login",
                          json={"name": "vera", "password": PASSWORDS["vera"]})
        assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
        assert "too many logins" in busy.json()["detail"]
        hasher.go.set()
        assert [f.result() for f in futures] == [200, 200]
        # The busy answer was no failed attempt: vera logs in at once.
        assert httpx.post(f"{server.url}{API}/auth/login",
                          json={"name": "vera", "password": PASSWORDS["vera"]}
                          ).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_half_sent_requests_and_extra_connections_are_closed(
        settings: Settings, database: Database) -> None:
    with running(settings, database, header_timeout=1) as server:
        with socket.create_connection(address(server), timeout=30) as sock:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: glasspane\r\n")  # no end
            assert until_closed(sock).startswith(b"HTTP/1.1 408 ")
        with socket.create_connection(address(server), timeout=30) as sock:
            assert until_closed(sock) == b""  # said nothing: closed without a word
        assert httpx.get(f"{server.url}{API}/health").status_code == 200  # whole heads pass

    with running(settings, database, max_connections=3, header_timeout=60) as server, \
            ExitStack() as stack:
        connections = server.server.server_state.connections
        held = [stack.enter_context(socket.create_connection(address(server)))
                for _ in range(3)]
        wait_for(lambda: len(connections) == 3, "three connections held")
        with socket.create_connection(address(server), timeout=30) as extra:
            answer = until_closed(extra)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
        held[0].close()
        wait_for(lambda: len(connections) == 2, "a connection given back")
        assert httpx.get(f"{server.url}{API}/health").status_code == 200


def test_a_stalled_upload_is_dropped_and_leaves_nothing(settings: Settings,
                                                        database: Database) -> None:
    with running(settings, database, body_timeout=1) as server:
        token = login(httpx.Client(base_url=server.url), "otto")["Authorization"]
        with socket.create_connection(address(server), timeout=30) as sock:
            sock.sendall(b"PUT /api/v1/images/stalled.img HTTP/1.1\r\nHost: glasspane\r\n"
                         b"Authorization: " + token.encode() + b"\r\n"
                         b"Content-Type: application/octet-stream\r\n"
                         b"Content-Length: 1048576\r\n\r\n" + b"\xab" * 65536)
            answer = until_closed(sock)  # half the body, then nothing
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"stopped arriving" in answer
        store = settings.data_dir / "images"
        assert not store.exists() or list(store.iterdir()) == []  # no partial file
        admin = login(httpx.Client(base_url=server.url), "ada")
        assert httpx.get(f"{server.url}{API}/images", headers=admin).json() == []
        wait_for(lambda: audited_requests(database, "otto") == 2, "the upload's audit row")
    with database.session() as session:
        row = session.scalar(select(AuditEntry).where(AuditEntry.action == "image.put"))
    assert row is not None and (row.status_code, row.outcome) == (408, "rejected")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_live_event_streams_are_capped_per_user(settings: Settings,
                                                database: Database) -> None:
    with running(settings, database, streams_per_user=2) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client, ExitStack() as stack:
        vera, ada = login(client, "vera"), login(client, "ada")

        def stream(headers: dict[str, str]) -> httpx.Response:
            return stack.enter_context(client.stream("GET", f"{API}/events", headers=headers))

        first, second = stream(vera), stream(vera)
        assert first.status_code == second.status_code == 200
        refused = stream(vera)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        refused.read()
        assert "already has 2 live event streams" in refused.json()["detail"]
        assert stream(ada).status_code == 200  # another user's are their own
        first.close()
        deadline = time.monotonic() + 30
        while (again := stream(vera)).status_code != 200:  # the closed one's place is back
            assert time.monotonic() < deadline, "the closed stream was never given back"
            again.close()


def test_anonymous_noise_in_the_audit_log_is_bounded_and_fields_capped(
        settings: Settings, database: Database) -> None:
    long = "x" * 3000
    with running(settings, database) as server, httpx.Client(base_url=server.url) as client:
        for i in range(300):
            assert client.post(f"{API}/vms/{long}/{i}/actions/start").status_code == 401
        operator = login(client, "otto")
        refused = client.post(f"{API}/vms/{long}/vm/actions/start", headers=operator)
        assert refused.status_code == 422  # a host's name is at most 64 characters
        wait_for(lambda: audited_requests(database, "anonymous") == 300 and
                 audited_requests(database, "otto") == 2, "the audit rows")
    with database.session() as session:
        anonymous = session.scalars(select(AuditEntry)
                                    .where(AuditEntry.user == "anonymous")).all()
        rows = session.scalars(select(AuditEntry)).all()
    # The first few in full, the rest counted (twice that if the run crossed a minute).
    assert len(anonymous) <= 2 * (3 + 1), [(r.action, r.count) for r in anonymous]
    assert max(r.count for r in anonymous) >= 296 // 2
    assert {r.address for r in rows} == {"127.0.0.1"}
    for row in rows:  # cut to the columns (PostgreSQL would refuse them otherwise)
        assert len(row.action) <= 64 and len(row.object_name) <= 512
    otto = next(r for r in rows if r.user == "otto" and r.action == "vm.start")
    assert otto.status_code == 422 and otto.object_name == f"{long}/vm"[:512]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_security_headers_and_nothing_from_a_cdn(settings: Settings,
                                                 database: Database) -> None:
    with running(settings, database) as server, httpx.Client(base_url=server.url) as client:
        for path, status in (("/", 200), ("/static/app.js", 200), (f"{API}/health", 200),
                             (f"{API}/vms", 401), (f"{API}/openapi.json", 200)):
            response = client.get(path)
            assert response.status_code == status, path
            headers = response.headers
            policy = headers["Content-Security-Policy"]
            assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["X-Frame-Options"] == "DENY"
        assert client.get(f"{API}/docs").status_code == 404  # Swagger UI came from a CDN
        page = client.get("/").text + client.get("/static/app.js").text + \
            client.get("/static/style.css").text
        assert "cdn" not in page.lower() and "<script>" not in page and " style=" not in page


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_page_runs_under_its_content_security_policy(settings: Settings,
                                                         database: Database) -> None:
    from playwright.sync_api import expect, sync_playwright
    violations: list[str] = []
    with running(settings, database) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: violations.append(m.text)
                    if "Content Security Policy" in m.text else None)
            page.on("pageerror", lambda exc: violations.append(str(exc)))
            page.goto(server.url + "/")
            page.fill("input[name=name]", "ada")
            page.fill("input[name=password]", PASSWORDS["ada"])
            page.click("#login-form button[type=submit]")
            expect(page.locator("#whoami")).to_have_text("ada (admin)")
            expect(page.locator("#live")).to_have_text("live", timeout=15_000)
            page.click("button[data-view=audit]")
            expect(page.locator("#audit tbody tr").first).to_contain_text("login")
            expect(page.locator("#audit tbody tr").first).to_contain_text("127.0.0.1")
        finally:
            browser.close()
    assert violations == []


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def test_serve_answers_over_https(settings: Settings, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    import ssl
    cert, key = self_signed(tmp_path)
    r = run_cli(capsys, "serve", "--tls-cert", str(cert))
    assert r.code == 2 and "--tls-cert and --tls-key go together" in r.err
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "glasspane.cli.main", "serve", "--listen", f"127.0.0.1:{port}",
         "--tls-cert", str(cert), "--tls-key", str(key), "--bootstrap-admin"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                health = httpx.get(f"https://127.0.0.1:{port}{API}/health", verify=trust)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "serve never answered"
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        password = (settings.config_dir / "admin-password").read_text().strip()
        answer = httpx.post(f"https://127.0.0.1:{port}{API}/auth/login", verify=trust,
                            json={"name": "admin", "password": password})
        assert answer.status_code == 200
        cookie = answer.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie
        with pytest.raises(httpx.HTTPError):  # plain HTTP gets no answer from it
            httpx.get(f"http://127.0.0.1:{port}{API}/health", timeout=10)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert f"glasspane serving https://127.0.0.1:{port}/" in err
