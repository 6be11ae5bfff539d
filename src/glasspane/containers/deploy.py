"""Deploying containers: `run` (create and start, pulling the image only if the VM lacks it,
removing the container again if it cannot start) and `load_image` (a tarball on the managing
machine streamed through SSH into the VM's engine)."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glasspane.containers.engine import Engine, quoted
from glasspane.containers.service import engine_of
from glasspane.errors import EngineError, NotFound, UsageError
from glasspane.settings import Settings

RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
_PORT = re.compile(r"^(?:(?P<ip>\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):)?(?:(?P<host>\d{1,5}):)?"
                   r"(?P<container>\d{1,5})(?:/(?P<proto>tcp|udp|sctp))?$")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
LOAD_CHUNK = 1 << 20


@dataclass
class RunRequest:
    image: str
    name: str | None = None
    command: list[str] | None = None
    ports: list[str] = field(default_factory=list)      # [IP:][HOST:]CONTAINER[/PROTO]
    env: list[str] = field(default_factory=list)        # KEY=VALUE
    volumes: list[str] = field(default_factory=list)    # SOURCE:DEST[:ro|rw]
    restart: str | None = None                          # POLICY[:MAX_RETRIES]
    labels: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.image.strip():
            raise UsageError("an image is required")
        if self.name is not None and not _NAME.match(self.name):
            raise UsageError(f"invalid container name {self.name!r}",
                             hint="letters, digits, '_', '.' and '-'")
        for port in self.ports:
            match = _PORT.match(port)
            if not match or not all(0 < int(p) < 65536 for p in
                                    (match["container"], match["host"] or "1")):
                raise UsageError(f"invalid port {port!r}",
                                 hint="HOST:CONTAINER, IP:HOST:CONTAINER or CONTAINER, "
                                      "optionally /tcp, /udp")
        for item in self.env:
            if "=" not in item or item.startswith("="):
                raise UsageError(f"invalid environment variable {item!r}", hint="KEY=VALUE")
        for volume in self.volumes:
            parts = volume.split(":")
            if len(parts) not in (2, 3) or not parts[1].startswith("/") or not parts[0] or \
                    (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise UsageError(f"invalid volume {volume!r}",
                                 hint="SOURCE:/DEST or SOURCE:/DEST:ro")
        if self.restart is not None:
            policy, _, retries = self.restart.partition(":")
            if policy not in RESTART_POLICIES or (retries and not retries.isdigit()):
                raise UsageError(f"invalid restart policy {self.restart!r}",
                                 hint=f"one of {', '.join(RESTART_POLICIES)}, "
                                      "on-failure:N")

    def create_body(self) -> dict[str, Any]:
        exposed: dict[str, dict[str, Any]] = {}
        bindings: dict[str, list[dict[str, str]]] = {}
        for port in self.ports:
            match = _PORT.match(port)
            assert match is not None
            key = f"{match['container']}/{match['proto'] or 'tcp'}"
            exposed[key] = {}
            if match["host"]:
                bindings.setdefault(key, []).append(
                    {"HostIp": (match["ip"] or "").strip("[]"), "HostPort": match["host"]})
        host_config: dict[str, Any] = {"PortBindings": bindings, "Binds": list(self.volumes)}
        if self.restart:
            policy, _, retries = self.restart.partition(":")
            host_config["RestartPolicy"] = {"Name": policy,
                                            "MaximumRetryCount": int(retries or 0)}
        body: dict[str, Any] = {"Image": self.image, "Env": list(self.env),
                                "Labels": dict(self.labels), "ExposedPorts": exposed,
                                "HostConfig": host_config}
        if self.command:
            body["Cmd"] = list(self.command)
        return body


def _create(engine: Engine, request: RunRequest) -> str:
    params = {"name": request.name} if request.name else None
    try:
        created = engine.json("POST", "/containers/create", params=params,
                              body=request.create_body())
    except NotFound:
        _pull(engine, request.image)
        created = engine.json("POST", "/containers/create", params=params,
                              body=request.create_body())
    return str(created["Id"])


def _pull(engine: Engine, image: str) -> None:
    t = engine.target
    try:
        with engine.stream("POST", "/images/create", params={"fromImage": image},
                           timeout=600) as (_, chunks):
            errors = [str(m["error"]) for m in _json_lines(chunks) if m.get("error")]
    except (EngineError, NotFound) as exc:
        errors = [exc.detail]
    if errors:
        raise EngineError(f"image {image} is not in the VM and pulling it failed: {errors[0]}",
                          host=t.host, vm=t.vm,
                          hint=f"load it from a tarball: `glasspane image load {t.vm} FILE.tar`")


def _json_lines(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """The engine's progress streams: JSON objects one after another (newline-separated)."""
    decoder = json.JSONDecoder()
    pending = ""
    for chunk in chunks:
        pending += chunk.decode(errors="replace")
        while True:
            pending = pending.lstrip()
            if not pending:
                break
            try:
                value, end = decoder.raw_decode(pending)
            except ValueError:
                break
            pending = pending[end:]
            if isinstance(value, dict):
                yield value


def create_and_start(engine: Engine, request: RunRequest) -> str:
    """Create and start a container (pulling its image if the VM lacks it); if it cannot
    start, it is removed again.  Its id."""
    container = _create(engine, request)
    try:
        engine.request("POST", f"/containers/{container}/start")
    except Exception:
        engine.request("DELETE", f"/containers/{container}", params={"force": "1"})
        raise
    return container


def run(settings: Settings, host: str, vm: str, request: RunRequest) -> dict[str, str]:
    request.validate()
    with engine_of(settings, host, vm) as engine:
        container = create_and_start(engine, request)
        info = engine.json("GET", f"/containers/{container}/json")
        return {"id": container[:12], "name": str(info.get("Name", "")).lstrip("/"),
                "state": str(info["State"].get("Status", "?"))}


def check_image_tarball(path: Path) -> None:
    """Refuse, before sending anything, a file that is not an image archive (docker-archive
    has manifest.json at its root, an OCI archive oci-layout)."""
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:
                if member.name.lstrip("./") in ("manifest.json", "oci-layout", "index.json"):
                    return
    except tarfile.ReadError:
        if _compressed(path):
            return  # the engine reads compressed archives; it checks them itself
        raise UsageError(f"{path} is not a tar archive",
                         hint="make it with `docker save` or `podman save`") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    raise UsageError(f"{path} is not a container image archive: no manifest.json or "
                     "oci-layout at its root", hint="make it with `docker save` or "
                                                   "`podman save`")


def _compressed(path: Path) -> bool:
    with open(path, "rb") as f:
        magic = f.read(6)
    return magic.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd"))


def load_image(settings: Settings, host: str, vm: str, path: Path,
               progress: Callable[[int], None] = lambda n: None) -> list[str]:
    """Stream an image archive into the VM's engine; the names it loaded."""
    check_image_tarball(path)
    size = path.stat().st_size

    def body() -> Iterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(LOAD_CHUNK):
                progress(len(chunk))
                yield chunk

    with engine_of(settings, host, vm) as engine:
        try:
            with engine.stream("POST", "/images/load", content=body(), timeout=600,
                               headers={"Content-Type": "application/x-tar",
                                        "Content-Length": str(size)}) as (_, chunks):
                messages = list(_json_lines(chunks))
        except EngineError as exc:
            raise EngineError(f"loading {path}: {exc.detail}", host=host, vm=vm,
                              hint="is it an image archive made by `docker save`?") from None
    errors = [str(m["error"]) for m in messages if m.get("error")]
    if errors:
        raise EngineError(f"loading {path}: {errors[0]}", host=host, vm=vm)
    return [line.split(":", 1)[1].strip() for m in messages
            for line in str(m.get("stream", "")).splitlines() if line.startswith("Loaded image")]


def image_exists(engine: Engine, image: str) -> bool:
    try:
        engine.json("GET", f"/images/{quoted(image)}/json")
    except NotFound:
        return False
    return True
