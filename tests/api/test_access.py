"""Who may do what, pinned: every route of the application against anonymous callers and each
role (one table below, checked against the dependencies each route declares, so a new route
without a rule fails here), the page's session cookie and its CSRF rule, who may cancel a
task, and the modes of the files that hold secrets.  Requests go to a real uvicorn server
with real tokens; made-up targets may rightly answer 404/409/422, never 401/403 once the
role suffices."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute
from sqlalchemy import select

from glasspane.api import deps
from glasspane.enums import ContainerAction, VmAction
from glasspane.inventory import tasks
from glasspane.inventory.db import Database
from glasspane.inventory.models import AuditEntry, User
from glasspane.inventory.users import SESSION_HOURS, add_user
from glasspane.settings import Settings
from tests.api.conftest import PASSWORDS, login, serve
from tests.api.test_api import _count  # noqa: F401 - registers the test.count task

API = "/api/v1"
PUBLIC, USER, VIEWER, OPERATOR, ADMIN = "public", "user", "viewer", "operator", "admin"

# The least a caller must be for each route.  USER: any signed-in user, whatever the role.
RULES: dict[tuple[str, str], str] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    ("GET", f"{API}/health"): PUBLIC,
    ("GET", f"{API}/openapi.json"): PUBLIC,
    ("POST", f"{API}/auth/login"): PUBLIC,
    ("POST", f"{API}/auth/logout"): USER,
    ("GET", f"{API}/auth/me"): USER,
    ("POST", f"{API}/auth/password"): USER,
    ("POST", f"{API}/users/{{name}}/password"): ADMIN,
    ("GET", f"{API}/users"): ADMIN,
    ("POST", f"{API}/users"): ADMIN,
    ("DELETE", f"{API}/users/{{name}}"): ADMIN,
    ("POST", f"{API}/users/{{name}}/tokens"): ADMIN,
    ("GET", f"{API}/users/{{name}}/tokens"): ADMIN,
    ("GET", f"{API}/audit"): ADMIN,
    ("GET", f"{API}/hosts"): VIEWER,
    ("GET", f"{API}/hosts/{{name}}"): VIEWER,
    ("GET", f"{API}/hosts/{{name}}/facts"): VIEWER,
    ("POST", f"{API}/hosts"): ADMIN,
    ("DELETE", f"{API}/hosts/{{name}}"): ADMIN,
    ("GET", f"{API}/vms"): VIEWER,
    ("GET", f"{API}/vms/{{host}}/{{name}}"): VIEWER,
    ("POST", f"{API}/vms"): OPERATOR,
    ("POST", f"{API}/vms/configure"): OPERATOR,
    ("POST", f"{API}/vms/{{host}}/{{name}}/actions/{{action}}"): OPERATOR,
    **{("POST", f"{API}/vms/{{host}}/{{name}}/actions/{action}"): OPERATOR
       for action in VmAction},
    ("PATCH", f"{API}/vms/{{host}}/{{name}}/resources"): OPERATOR,
    ("GET", f"{API}/vms/{{host}}/{{name}}/hardware"): VIEWER,
    ("POST", f"{API}/vms/{{host}}/{{name}}/disks"): OPERATOR,
    ("PATCH", f"{API}/vms/{{host}}/{{name}}/disks/{{device}}"): OPERATOR,
    ("DELETE", f"{API}/vms/{{host}}/{{name}}/disks/{{device}}"): OPERATOR,
    ("POST", f"{API}/vms/{{host}}/{{name}}/nics"): OPERATOR,
    ("DELETE", f"{API}/vms/{{host}}/{{name}}/nics/{{mac}}"): OPERATOR,
    ("POST", f"{API}/vms/{{host}}/{{name}}/cdrom"): OPERATOR,
    ("DELETE", f"{API}/vms/{{host}}/{{name}}/cdrom"): OPERATOR,
    ("POST", f"{API}/vms/{{host}}/{{name}}/snapshots"): OPERATOR,
    ("POST", f"{API}/vms/{{host}}/{{name}}/snapshots/{{snapshot}}/revert"): OPERATOR,
    ("DELETE", f"{API}/vms/{{host}}/{{name}}"): OPERATOR,
    ("GET", f"{API}/vms/{{host}}/{{name}}/facts"): VIEWER,
    ("GET", f"{API}/vms/{{host}}/{{name}}/console"): VIEWER,
    ("POST", f"{API}/vms/{{host}}/{{name}}/export"): OPERATOR,
    ("POST", f"{API}/vms/{{host}}/{{name}}/exec"): OPERATOR,
    ("POST", f"{API}/vms/{{host}}/{{name}}/console/tickets"): OPERATOR,
    ("GET", f"{API}/containers"): VIEWER,
    ("POST", f"{API}/containers/{{host}}/{{vm}}/{{name}}/actions/{{action}}"): OPERATOR,
    **{("POST", f"{API}/containers/{{host}}/{{vm}}/{{name}}/actions/{action}"): OPERATOR
       for action in ContainerAction},
    ("POST", f"{API}/containers/{{host}}/{{vm}}"): OPERATOR,
    ("GET", f"{API}/containers/{{host}}/{{vm}}/{{name}}/logs"): VIEWER,
    ("GET", f"{API}/containers/{{host}}/{{vm}}/{{name}}/inspect"): VIEWER,
    ("GET", f"{API}/containers/{{host}}/{{vm}}/{{name}}/top"): VIEWER,
    ("GET", f"{API}/containers/{{host}}/{{vm}}/{{name}}/stats"): VIEWER,
    ("GET", f"{API}/vms/{{host}}/{{vm}}/engine"): VIEWER,
    ("GET", f"{API}/apps"): VIEWER,
    ("POST", f"{API}/vms/{{host}}/{{vm}}/apps"): OPERATOR,
    ("DELETE", f"{API}/vms/{{host}}/{{vm}}/apps/{{name}}"): OPERATOR,
    ("POST", f"{API}/apps/validate"): VIEWER,
    ("GET", f"{API}/templates"): VIEWER,
    ("POST", f"{API}/templates"): OPERATOR,
    ("POST", f"{API}/templates/from-debian"): OPERATOR,
    ("POST", f"{API}/templates/build"): OPERATOR,
    ("POST", f"{API}/templates/validate"): VIEWER,
    ("DELETE", f"{API}/templates/{{host}}/{{name}}"): OPERATOR,
    ("GET", f"{API}/images"): VIEWER,
    ("PUT", f"{API}/images/{{name}}"): OPERATOR,
    ("GET", f"{API}/images/{{name}}"): VIEWER,
    ("GET", f"{API}/images/{{name}}/content"): VIEWER,
    ("DELETE", f"{API}/images/{{name}}"): OPERATOR,
    ("POST", f"{API}/images/{{name}}/check"): OPERATOR,
    ("POST", f"{API}/images/{{name}}/convert"): OPERATOR,
    ("POST", f"{API}/images/compare"): OPERATOR,
    ("POST", f"{API}/images/{{name}}/upload"): OPERATOR,
    ("GET", f"{API}/vms/{{host}}/{{name}}/images"): VIEWER,
    ("POST", f"{API}/vms/{{host}}/{{name}}/images"): OPERATOR,
    ("GET", f"{API}/tasks"): VIEWER,
    ("GET", f"{API}/tasks/{{task_id}}"): VIEWER,
    ("POST", f"{API}/tasks/{{task_id}}/cancel"): OPERATOR,
    ("GET", f"{API}/events"): VIEWER,
}
RANK = {USER: 0, VIEWER: 0, OPERATOR: 1, ADMIN: 2}  # every user is at least a viewer
CALLERS = {"anonymous": None, "vera": VIEWER, "otto": OPERATOR, "ada": ADMIN}
# Made-up targets for the path's parameters: nothing by these names exists.
SAMPLES = {"host": "nohost", "vm": "novm", "name": "noname", "action": "start",
           "snapshot": "nosnap", "task_id": "999999", "device": "vdb",
           "mac": "52:54:00:00:00:01"}
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def app_routes(app: FastAPI) -> dict[tuple[str, str], Any]:
    """Every (method, path) the application answers, with the route's dependencies (None
    for routes FastAPI did not make: the OpenAPI document, the static files)."""
    try:  # FastAPI >= 0.165 keeps included routers whole
        from fastapi.routing import iter_route_contexts
        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = list(app.routes)
    found: dict[tuple[str, str], Any] = {}
    for route in routes:
        if isinstance(getattr(route, "original_route", route), APIWebSocketRoute):
            continue  # no HTTP method: the consoles' sockets, refused in test_consoles.py
        methods = getattr(route, "methods", None) or {"GET"}  # a mount: its files are read
        for method in set(methods) - {"HEAD"}:
            found[(method, route.path)] = getattr(route, "dependant", None)
    return found


def declared_role(dependant: Any) -> str:
    """The least role the route's dependencies let through."""
    calls: set[Any] = set()
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        for sub in current.dependencies:
            calls.add(sub.call)
            pending.append(sub)
    for role, dependency in ((ADMIN, deps.admin), (OPERATOR, deps.operator),
                             (VIEWER, deps.viewer)):
        if dependency in calls:
            return role
    return USER if deps.authenticated in calls else PUBLIC


def concrete(path: str) -> str:
    if path == "/static":
        return "/static/app.js"
    for name, value in SAMPLES.items():
        path = path.replace(f"{{{name}}}", value)
    assert "{" not in path, f"no sample value for a parameter of {path}"
    return path


def expected(rule: str, role: str | None, status: int) -> str | None:
    """What is wrong with `status` for a caller of `role` (None: anonymous), or None."""
    if rule == PUBLIC:
        return None if status not in (401, 403) else "a public route refused"
    if role is None:
        return None if status == 401 else "anonymous not refused with 401"
    if RANK[role] < RANK[rule]:
        return None if status == 403 else f"a {role} not refused with 403"
    return None if status not in (401, 403) else f"a {role} refused"


def test_every_route_has_a_rule_and_declares_it(app: FastAPI) -> None:
    routes = app_routes(app)
    assert set(routes) - set(RULES) == set(), "routes without a rule in RULES"
    assert set(RULES) - set(routes) == set(), "rules for routes that no longer exist"
    wrong = {key: (RULES[key], declared_role(dependant)) for key, dependant in routes.items()
             if declared_role(dependant) != RULES[key]}
    assert wrong == {}, "routes whose declared dependency differs from RULES"


def test_role_matrix_over_every_route(app: FastAPI) -> None:
    server = serve(app)
    problems: list[tuple[str, str, str, int, str]] = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            tokens = {name: bearer(client, name) for name in CALLERS if name != "anonymous"}
            for (method, path), rule in sorted(RULES.items()):
                for name, role in CALLERS.items():
                    headers = tokens.get(name, {})
                    if path.endswith("/auth/logout") and role is not None:
                        headers = bearer(client, name)  # logging out spends the token
                    status = _attempt(client, method, concrete(path), headers)
                    wrong = expected(rule, role, status)
                    if wrong is None and status >= 500:
                        wrong = "a server error"
                    if wrong:
                        problems.append((method, path, name, status, wrong))
    finally:
        app.state.services.bus.wake()  # event streams notice their callers left
        server.stop()
    assert problems == []


def bearer(client: httpx.Client, name: str) -> dict[str, str]:
    """A token for `name`, in the header alone (the login's cookie is dropped: the matrix's
    anonymous caller must carry nothing)."""
    headers = login(client, name)
    client.cookies.clear()
    return headers


def _attempt(client: httpx.Client, method: str, url: str, headers: dict[str, str]) -> int:
    body: dict[str, Any] = {"json": {}} if method in UNSAFE else {}
    # Streamed, and closed unread: the event stream never ends by itself.
    with client.stream(method, url, headers=headers, **body) as response:
        return response.status_code


# -- the session cookie and CSRF ------------------------------------------------------------
def _session_cookie(response: httpx.Response) -> Any:
    header = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith(deps.COOKIE + "="))
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    return jar[deps.COOKIE], header.lower()


def _sign_in(client: httpx.Client, name: str) -> httpx.Response:
    response = client.post(f"{API}/auth/login",
                           json={"name": name, "password": PASSWORDS[name]})
    assert response.status_code == 200, response.text
    return response


def test_session_cookie_is_httponly_strict_and_not_secure_over_http(app: FastAPI) -> None:
    server = serve(app)
    try:
        with httpx.Client(base_url=server.url) as client:
            cookie, raw = _session_cookie(_sign_in(client, "vera"))
            assert cookie["httponly"] and cookie["samesite"].lower() == "strict"
            assert cookie["path"] == "/" and int(cookie["max-age"]) == SESSION_HOURS * 3600
            assert "secure" not in raw
            # The page reads with the cookie alone.
            assert client.get(f"{API}/auth/me").json()["name"] == "vera"
    finally:
        server.stop()


def test_session_cookie_is_secure_over_tls(app: FastAPI, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = serve(app, (cert, key))
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=server.url, verify=trust) as client:
            cookie, _ = _session_cookie(_sign_in(client, "vera"))
            assert cookie["secure"] and cookie["httponly"]
            assert cookie["samesite"].lower() == "strict"
            assert client.get(f"{API}/auth/me").json()["name"] == "vera"
    finally:
        server.stop()


def test_cross_site_post_with_the_cookie_but_no_csrf_header_is_refused(
        app: FastAPI, database: Database) -> None:
    server = serve(app)
    try:
        with httpx.Client(base_url=server.url) as client:
            _sign_in(client, "ada")  # the admin's browser holds the session cookie
            # What a page on another site can make the browser send: a form post, with the
            # cookie (were SameSite not there) but no custom header.
            for content_type, body in (
                    ("application/x-www-form-urlencoded", "name=mallory&role=admin"),
                    ("text/plain", '{"name": "mallory", "password": "12345678", '
                                   '"role": "admin"}')):
                forged = client.post(f"{API}/users", content=body,
                                     headers={"Origin": "https://evil.example",
                                              "Content-Type": content_type})
                assert forged.status_code == 403, forged.text
                assert "X-Glasspane" in forged.json()["detail"]
            wrong_value = client.post(f"{API}/users", headers={"X-Glasspane": "0"},
                                      json={"name": "mallory", "password": "12345678",
                                            "role": "admin"})
            assert wrong_value.status_code == 403
            with database.session() as session:
                assert session.scalar(select(User).where(User.name == "mallory")) is None
            # The page's own request carries the header; a bearer token needs none.
            made = client.post(f"{API}/users", headers={"X-Glasspane": "1"},
                               json={"name": "nina", "password": "12345678", "role": "viewer"})
            assert made.status_code == 201, made.text
        with httpx.Client(base_url=server.url) as script:
            bearer = login(script, "ada")
            script.cookies.clear()
            made = script.post(f"{API}/users", headers=bearer,
                               json={"name": "nora", "password": "12345678", "role": "viewer"})
            assert made.status_code == 201, made.text
    finally:
        server.stop()


def test_every_change_made_with_the_cookie_needs_the_csrf_header(app: FastAPI) -> None:
    server = serve(app)
    refused = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            _sign_in(client, "ada")
            for (method, path), rule in sorted(RULES.items()):
                if method not in UNSAFE or rule == PUBLIC:
                    continue
                refused.append((method, path,
                                _attempt(client, method, concrete(path), {})))
            assert client.get(f"{API}/auth/me").status_code == 200  # still signed in
    finally:
        server.stop()
    assert refused and all(status == 403 for _, _, status in refused), refused


def test_no_other_site_may_read_answers(app: FastAPI) -> None:
    server = serve(app)
    try:
        with httpx.Client(base_url=server.url) as client:
            _sign_in(client, "vera")
            evil = {"Origin": "https://evil.example"}
            read = client.get(f"{API}/auth/me", headers=evil)
            assert "access-control-allow-origin" not in read.headers
            preflight = client.options(f"{API}/users", headers={
                **evil, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-glasspane, content-type"})
            assert "access-control-allow-origin" not in preflight.headers
            assert "access-control-allow-headers" not in preflight.headers
    finally:
        server.stop()


def test_logout_clears_the_cookie_and_ends_its_session(app: FastAPI) -> None:
    server = serve(app)
    try:
        with httpx.Client(base_url=server.url) as client:
            token = _sign_in(client, "otto").json()["token"]
            out = client.post(f"{API}/auth/logout", headers={"X-Glasspane": "1"})
            assert out.status_code == 200
            cleared = next(v for k, v in out.headers.multi_items() if k == "set-cookie")
            assert cleared.startswith(f"{deps.COOKIE}=") and "max-age=0" in cleared.lower()
            client.cookies.set(deps.COOKIE, token)  # a copy kept by someone else
            assert client.get(f"{API}/auth/me").status_code == 401
    finally:
        server.stop()


# -- tasks: an operator's own, an admin's any ----------------------------------------------
def test_operators_cancel_only_their_own_tasks(app: FastAPI, database: Database) -> None:
    with database.session() as session:
        add_user(session, "olga", "operator-password-2", "operator")
    server = serve(app)
    try:
        with httpx.Client(base_url=server.url) as client:
            mine = tasks.submit(database, "test.count", "vm", "local/web-1", {}, "otto",
                                cancellable=True)
            hers = tasks.submit(database, "test.count", "vm", "local/web-1", {}, "olga",
                                cancellable=True)
            otto, ada, vera = (login(client, n) for n in ("otto", "ada", "vera"))
            olga = {"Authorization": "Bearer " + client.post(
                f"{API}/auth/login", json={"name": "olga", "password": "operator-password-2"}
            ).json()["token"]}

            refused = client.post(f"{API}/tasks/{hers['id']}/cancel", headers=otto)
            assert refused.status_code == 403, refused.text
            assert refused.json()["detail"] == \
                f"task {hers['id']} is olga's: only they or an admin may cancel it"
            assert client.post(f"{API}/tasks/{mine['id']}/cancel",
                               headers=vera).status_code == 403
            state = client.get(f"{API}/tasks/{hers['id']}", headers=otto).json()["state"]
            assert state == "queued"  # untouched
            assert client.post(f"{API}/tasks/{mine['id']}/cancel",
                               headers=otto).json()["state"] == "cancelled"
            assert client.post(f"{API}/tasks/{hers['id']}/cancel",
                               headers=ada).json()["state"] == "cancelled"
            again = client.post(f"{API}/tasks/{hers['id']}/cancel", headers=olga)
            assert again.status_code == 400  # her own, but already cancelled
    finally:
        server.stop()
    with database.session() as session:
        outcomes = {(a.user, a.object_name, a.outcome) for a in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "task.cancel"))}
    assert ("otto", str(hers["id"]), "denied") in outcomes
    assert ("ada", str(hers["id"]), "succeeded") in outcomes


# -- modes of the files that hold secrets ---------------------------------------------------
def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that lets group and others read what is made, as many accounts have."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def wide_config_dir(settings: Settings) -> Path:
    """A configuration directory that already existed, open to all (made by hand, or by
    another program)."""
    settings.config_dir.mkdir(parents=True)
    os.chmod(settings.config_dir, 0o755)
    return settings.config_dir


def test_host_registry_and_secrets_are_private(
        settings: Settings, wide_config_dir: Path, loose_umask: None, tmp_path: Path) -> None:
    from glasspane.hosts import service
    service.add_host(settings, "kvm2", "qemu+ssh://root@kvm2.example.com/system", check=False)
    service.add_host(settings, "xcp", "https://xcp1.example.com", "xenapi", check=False,
                     user="root", password="pool-password")
    assert mode(wide_config_dir) == 0o700
    assert mode(wide_config_dir / "host-secrets.key") == 0o600  # the passwords' key
    assert mode(settings.data_dir / "glasspane.db") == 0o600   # the hosts, the passwords


def test_glasspane_ssh_key_is_private(settings: Settings, loose_umask: None) -> None:
    from glasspane.guests.keys import management_key
    key = management_key(settings)  # the first file made in a new config directory
    assert mode(settings.config_dir) == 0o700
    assert mode(key.parent) == 0o700 and mode(key) == 0o600


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bootstrap_password_is_private_even_over_an_old_file(
        settings: Settings, wide_config_dir: Path, loose_umask: None, database_url: str,
        ) -> None:
    from glasspane.cli.serve import _bootstrap_admin
    stale = wide_config_dir / "admin-password"
    stale.write_text("old\n")
    os.chmod(stale, 0o644)
    database = Database.open(settings, database_url)
    try:
        _bootstrap_admin(settings, database)
    finally:
        database.close()
    assert mode(wide_config_dir) == 0o700
    assert mode(stale) == 0o600 and stale.read_text() != "old\n"


def test_cli_token_is_private_even_over_an_old_file(
        settings: Settings, wide_config_dir: Path, loose_umask: None) -> None:
    from glasspane.cli.remote import save_token
    stale = wide_config_dir / "token"
    stale.write_text("old\n")
    os.chmod(stale, 0o644)
    save_token(settings, "gp_new")
    assert mode(wide_config_dir) == 0o700 and mode(stale) == 0o600


def test_sqlite_inventory_is_private_even_when_it_existed(
        settings: Settings, loose_umask: None, tmp_path: Path) -> None:
    path = tmp_path / "shared" / "inventory.db"
    path.parent.mkdir()
    path.touch()
    os.chmod(path, 0o644)  # an empty file left by hand, or a copy
    database = Database.open(settings, f"sqlite:///{path}")
    try:
        with database.session() as session:
            add_user(session, "nina", "a-long-password", "viewer")  # a hash is written
        assert mode(path) == 0o600
        # SQLite gives its journal files the database's own mode.
        for journal in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if journal.exists():
                assert mode(journal) == 0o600, journal
    finally:
        database.close()


# -- what a viewer's errors may say ----------------------------------------------------------
def _tar(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_validation_error_names_the_context_not_the_server_paths(
        app: FastAPI, settings: Settings) -> None:
    spec = (b"name: web\nsource: {debian: {suite: bookworm}}\noutputs: [{format: qcow2}]\n"
            b"provisioners:\n  - shell: {script: ../../missing.sh}\n")
    server = serve(app)
    try:
        with httpx.Client(base_url=server.url) as client:
            operator, viewer = bearer(client, "otto"), bearer(client, "vera")
            for name, files in (("spec.tar", {"template.yaml": spec}),
                                ("broken.tar", {"template.yaml": b"name: [\n",
                                                "app.yaml": b"name: x\nsource: 1\n"})):
                stored = client.put(f"{API}/images/{name}", content=_tar(files), headers={
                    **operator, "Content-Type": "application/octet-stream"})
                assert stored.status_code == 201, stored.text
            answers = [
                client.post(f"{API}/templates/validate", headers=viewer,
                            json={"context": "spec.tar"}),
                client.post(f"{API}/templates/validate", headers=viewer,
                            json={"context": "broken.tar"}),
                client.post(f"{API}/apps/validate", headers=viewer,
                            json={"context": "broken.tar"})]
    finally:
        server.stop()
    details = [a.json()["detail"] for a in answers]
    assert [a.status_code for a in answers] == [400, 400, 400], details
    assert "spec.tar:template.yaml line 5" in details[0]
    assert "'../../missing.sh' is outside the context" in details[0]
    assert details[1].startswith("broken.tar:template.yaml line 2")
    assert details[2].startswith("broken.tar:app.yaml line 2")
    for detail in details:
        assert str(settings.data_dir) not in detail and "staging" not in detail, detail
