"""A Docker Engine API client for one VM's engine (Docker, or Podman's compatible service),
over the relay transport.  Every failure becomes one of the project's errors here, naming the
host, the VM and the request: the engine's own message for HTTP errors, GuestUnreachable when
the SSH connection is gone, EngineError when the engine is silent past the timeout."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpcore

from glasspane.containers.discovery import Probe, probe_engine
from glasspane.containers.transport import RelayBackend
from glasspane.errors import EngineError, GuestUnreachable, NotFound
from glasspane.guests.ssh import SshConnection

DEFAULT_TIMEOUT = 30.0  # a question: an engine silent this long is hung
# A change (create, start, stop, remove) is work in the guest: a container's start sets up
# its namespaces, network and conmon, which under TCG on a busy host took past 30 s (the
# demo's deploy failed so).  It gets the longer deadline; still a deadline, for a hung one.
CHANGE_TIMEOUT = 300.0
# The API version spoken: Docker 20.10 and Podman 4's compatible service both answer it.
API_VERSION = "1.41"
KEEPALIVE_EXPIRY = 120.0
# Podman's socket-activated service exits after 5 s without requests (`podman system service`
# without --time), closing every kept connection as it goes: a request sent into one then
# meets "Server disconnected without sending a response".  Its connections are not reused
# past 3 s idle, well before that.
PODMAN_KEEPALIVE_EXPIRY = 3.0
MAX_CONNECTIONS = 4
# Requests sent again, once, on a new connection when a kept one turns out to have been closed
# by the engine before it answered: reading them twice changes nothing.
REPLAYABLE = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class EngineInfo:
    kind: str            # "docker" or "podman"
    version: str
    api_version: str
    socket: str
    sudo: bool           # the relay runs under sudo -n
    relay: str           # socat or python3
    started: list[str]   # units started on demand by the probe
    os: str
    arch: str


def _message(body: bytes) -> str:
    """The engine's error message, on one line (Podman's span several)."""
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode(errors="replace")
    else:
        text = str(data.get("message") or data.get("cause") or data) \
            if isinstance(data, dict) else str(data)
    text = " ".join(text.replace("\n * ", "; ").split())
    return text if len(text) <= 600 else text[:600] + "..."


class Engine:
    """Kept HTTP connections to one VM's engine; thread-safe (httpcore's pool is)."""

    def __init__(self, ssh: SshConnection, probe: Probe) -> None:
        self.ssh = ssh
        self.target = ssh.target
        assert probe.socket is not None and probe.relay is not None
        self._pool = httpcore.ConnectionPool(
            network_backend=RelayBackend(ssh, probe.socket, probe.relay, probe.sudo),
            max_connections=MAX_CONNECTIONS,
            keepalive_expiry=PODMAN_KEEPALIVE_EXPIRY if "podman" in probe.socket
            else KEEPALIVE_EXPIRY)
        # Requests under way, and whether the engine was retired meanwhile: another thread's
        # broken call must not close the connections this one is reading.
        self._active, self._retired = 0, False
        self._guard = threading.Lock()
        version = self.json("GET", "/version", versioned=False)
        components = [c.get("Name", "") for c in version.get("Components") or []]
        kind = "podman" if any("Podman" in name for name in components) else "docker"
        self.info = EngineInfo(kind, str(version.get("Version", "?")),
                               str(version.get("ApiVersion", "?")), probe.socket, probe.sudo,
                               probe.relay, probe.started, str(version.get("Os", "?")),
                               str(version.get("Arch", "?")))

    @classmethod
    def connect(cls, ssh: SshConnection) -> Engine:
        return cls(ssh, probe_engine(ssh))

    def _url(self, path: str, params: dict[str, Any] | None, versioned: bool) -> str:
        prefix = f"/v{API_VERSION}" if versioned else ""
        query = f"?{urlencode(params)}" if params else ""
        return f"http://engine{prefix}{path}{query}"

    def _extensions(self, timeout: float) -> dict[str, Any]:
        return {"timeout": {"connect": timeout, "read": timeout, "write": timeout,
                            "pool": timeout}}

    def _translate(self, exc: Exception, what: str, timeout: float) -> Exception:
        t = self.target
        if isinstance(exc, httpcore.TimeoutException):
            return EngineError(f"the container engine did not answer {what} within "
                               f"{timeout:.0f} s", host=t.host, vm=t.vm,
                               hint="is it hung? `systemctl status podman docker` in the VM")
        if not self._master_alive():
            return GuestUnreachable(f"the SSH connection to {t.address} dropped during {what}",
                                    host=t.host, vm=t.vm,
                                    hint="the next call reconnects; is the VM still up?")
        return EngineError(f"the connection to the engine broke during {what}: {exc}",
                           host=t.host, vm=t.vm)

    def _master_alive(self) -> bool:
        try:
            return self.ssh.alive()
        except OSError:
            return False

    def _check(self, response: httpcore.Response, body: bytes, what: str) -> None:
        status = response.status
        if status < 400:
            return
        message = _message(body)
        t = self.target
        if status == 404:
            error = NotFound(f"host {t.host}, VM {t.vm}: {message}")
            error.detail = message
            raise error
        raise EngineError(f"{what}: {message}", host=t.host, vm=t.vm)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, content: bytes | Iterator[bytes] | None = None,
                headers: dict[str, str] | None = None, timeout: float | None = None,
                versioned: bool = True) -> tuple[int, bytes]:
        """Send one request; the status (below 400) and the whole body."""
        with self.stream(method, path, params=params, body=body, content=content,
                         headers=headers, timeout=timeout, versioned=versioned) as (status,
                                                                                     chunks):
            return status, b"".join(chunks)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        _, body = self.request(method, path, **kwargs)
        return json.loads(body) if body.strip() else None

    @contextmanager
    def stream(self, method: str, path: str, *, params: dict[str, Any] | None = None,
               body: Any = None, content: bytes | Iterator[bytes] | None = None,
               headers: dict[str, str] | None = None, timeout: float | None = None,
               versioned: bool = True) -> Iterator[tuple[int, Iterator[bytes]]]:
        """Send one request; yields the status and the body as it arrives (logs --follow,
        image loads), raising the project's errors both before and while streaming."""
        what = f"{method} {path}"
        if timeout is None:
            timeout = DEFAULT_TIMEOUT if method in ("GET", "HEAD") else CHANGE_TIMEOUT
        sent_headers: dict[bytes | str, bytes | str] = {"Host": "engine"}
        sent_headers.update(headers or {})
        if body is not None:
            content = json.dumps(body).encode()
            sent_headers["Content-Type"] = "application/json"
        if isinstance(content, bytes):
            sent_headers["Content-Length"] = str(len(content))
        attempts = 2 if method in REPLAYABLE and not isinstance(content, Iterator) else 1
        with self._guard:
            self._active += 1
        try:
            for attempt in range(1, attempts + 1):
                answered = False
                try:
                    with self._pool.stream(method, self._url(path, params, versioned),
                                           headers=sent_headers, content=content,
                                           extensions=self._extensions(timeout)) as response:
                        answered = True
                        if response.status >= 400:
                            self._check(response, response.read(), what)
                        yield response.status, self._chunks(response, what, timeout)
                    return
                except (httpcore.RemoteProtocolError, httpcore.ReadError,
                        httpcore.WriteError) as exc:
                    # A kept connection the engine closed as the request went out (Podman's
                    # service exiting when idle): once more, on a new connection.
                    if answered or attempt == attempts or not self._master_alive():
                        raise self._translate(exc, what, timeout) from None
                except (httpcore.TimeoutException, httpcore.NetworkError,
                        httpcore.ProtocolError) as exc:
                    raise self._translate(exc, what, timeout) from None
        finally:
            with self._guard:
                self._active -= 1
                close = self._retired and self._active == 0
            if close:
                self._pool.close()

    def _chunks(self, response: httpcore.Response, what: str, timeout: float
                ) -> Iterator[bytes]:
        try:
            yield from response.iter_stream()
        except (httpcore.TimeoutException, httpcore.NetworkError,
                httpcore.ProtocolError) as exc:
            raise self._translate(exc, what, timeout) from None

    def close(self) -> None:
        """Close the connections now, or once the requests under way have ended."""
        with self._guard:
            self._retired = True
            if self._active:
                return
        self._pool.close()


def quoted(name: str) -> str:
    """A container or image name as one path segment."""
    return quote(name, safe="")
