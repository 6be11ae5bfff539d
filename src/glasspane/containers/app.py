"""Apps: several containers described by one compose-style YAML file, deployed into a VM with
one command and updated in place.

    name: shop
    services:
      web:
        image: localhost/shop-web:2
        archive: images/shop-web-2.tar   # loaded over SSH if the VM lacks the image
        command: [httpd, -f, -p, "8080"]
        ports: ["8080:8080"]
        environment: {MODE: production}
        volumes: ["/srv/shop:/data:ro"]
        restart: unless-stopped
        depends_on: [db]

Each service runs as container NAME-SERVICE, labelled with the app, the service and a hash of
its definition.  A redeploy leaves unchanged services running, recreates changed ones (the old
container is kept, stopped and renamed, until the new one runs, and put back if it does not)
and removes services no longer in the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glasspane.containers.deploy import RunRequest, create_and_start, image_exists, load_image
from glasspane.containers.engine import Engine
from glasspane.containers.service import APP_LABEL, engine_of
from glasspane.errors import NotFound, UsageError
from glasspane.settings import Settings
from glasspane.yamlspec import TOP, Located, SpecReader, load_yaml, outside

SERVICE_LABEL = "io.glasspane.service"
HASH_LABEL = "io.glasspane.config-hash"
_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PREVIOUS = "-previous"  # the old container's name while its replacement starts
SERVICE_KEYS = {"image", "archive", "command", "ports", "environment", "volumes", "restart",
                "labels", "depends_on"}


@dataclass
class Service:
    name: str
    request: RunRequest
    archive: Path | None
    depends_on: list[str]


@dataclass
class AppSpec:
    name: str
    services: list[Service]  # in start order: dependencies first


def _service(reader: SpecReader, app: str, name: str, value: Any, base: Path,
             confine: Path | None) -> Service:
    where = f"services.{name}"
    spec = reader.mapping(value, where, SERVICE_KEYS, {"image"})
    request = RunRequest(reader.string(spec, "image", f"{where}.image"), f"{app}-{name}")
    if "command" in spec:
        request.command = reader.strings(spec, "command", f"{where}.command")
    for key in ("ports", "volumes"):
        if key in spec:
            setattr(request, key, reader.strings(spec, key, f"{where}.{key}"))
    if "environment" in spec:
        env = spec["environment"]
        if isinstance(env, Located):
            request.env = [f"{k}={'' if v is None else v}" for k, v in env.items()]
        else:
            request.env = reader.strings(spec, "environment", f"{where}.environment")
    if "restart" in spec:
        request.restart = reader.string(spec, "restart", f"{where}.restart")
    if "labels" in spec:
        labels = reader.mapping(spec["labels"], f"{where}.labels",
                                set(spec["labels"]) if isinstance(spec["labels"], dict)
                                else set())
        request.labels = {str(k): str(v) for k, v in labels.items()}
    try:
        request.validate()
    except UsageError as exc:
        raise reader.fail(where, exc.message, spec) from None
    archive = None
    if "archive" in spec:
        named = reader.string(spec, "archive", f"{where}.archive")
        archive = base / named
        if outside(archive, confine):
            raise reader.fail(f"{where}.archive", f"{named!r} is outside the context "
                              "(name files relative to the spec, inside its directory)",
                              spec, "archive")
        if not archive.is_file():
            raise reader.fail(f"{where}.archive", f"no file {archive}", spec, "archive")
    depends = reader.strings(spec, "depends_on", f"{where}.depends_on") \
        if "depends_on" in spec else []
    return Service(name, request, archive, depends)


def parse_app(path: Path, confine: Path | None = None) -> AppSpec:
    """The app spec in `path`; with `confine` (a server's unpacked context) every archive it
    names must be inside that directory."""
    reader = SpecReader(path)
    top = reader.mapping(load_yaml(path), TOP, {"name", "services"},
                         {"name", "services"})
    name = reader.string(top, "name", "name")
    if not _APP_NAME.match(name):
        raise reader.fail("name", f"invalid app name {name!r} (lowercase letters, digits, "
                          "'-' and '_')", top, "name")
    services_map = top["services"]
    if not isinstance(services_map, Located) or not services_map:
        raise reader.fail("services", "expected a mapping of one or more services", top,
                          "services")
    services = {}
    for service_name, value in services_map.items():
        if not _APP_NAME.match(str(service_name)):
            raise reader.fail(f"services.{service_name}", "invalid service name",
                              services_map, service_name)
        services[str(service_name)] = _service(reader, name, str(service_name), value,
                                               path.parent, confine)
    for service in services.values():
        for dependency in service.depends_on:
            if dependency not in services:
                raise reader.fail(f"services.{service.name}.depends_on",
                                  f"no service named {dependency!r}", services_map,
                                  service.name)
    return AppSpec(name, _start_order(reader, services, services_map))


def _start_order(reader: SpecReader, services: dict[str, Service], where: Located
                 ) -> list[Service]:
    ordered: list[Service] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise reader.fail("services", "depends_on forms a cycle: "
                              + " -> ".join([*chain, name]), where, name)
        state[name] = "visiting"
        for dependency in services[name].depends_on:
            visit(dependency, [*chain, name])
        state[name] = "done"
        ordered.append(services[name])

    for name in services:
        visit(name, [])
    return ordered


def config_hash(request: RunRequest) -> str:
    return hashlib.sha256(json.dumps(request.create_body(), sort_keys=True).encode()
                          ).hexdigest()[:16]


def _existing(engine: Engine, app: str) -> dict[str, dict[str, Any]]:
    filters = json.dumps({"label": [f"{APP_LABEL}={app}"]})
    items = engine.json("GET", "/containers/json", params={"all": "1", "filters": filters})
    return {str(item["Names"][0]).lstrip("/"): item for item in items or []}


def _replace(engine: Engine, old: dict[str, Any], request: RunRequest) -> None:
    """Swap a running container for a new definition; the old one comes back on failure."""
    old_id = str(old["Id"])
    assert request.name is not None
    engine.request("POST", f"/containers/{old_id}/stop", params={"t": "10"}, timeout=60)
    engine.request("POST", f"/containers/{old_id}/rename",
                   params={"name": request.name + PREVIOUS})
    try:
        create_and_start(engine, request)
    except Exception:
        engine.request("POST", f"/containers/{old_id}/rename", params={"name": request.name})
        if old.get("State") == "running":
            engine.request("POST", f"/containers/{old_id}/start")
        raise
    engine.request("DELETE", f"/containers/{old_id}", params={"force": "1", "v": "1"})


def deploy_app(settings: Settings, host: str, vm: str, path: Path) -> list[tuple[str, str]]:
    """Bring the VM's containers of the app to what `path` describes; (service, what was
    done) for each service, in the order it was done."""
    spec = parse_app(path)
    done: list[tuple[str, str]] = []
    with engine_of(settings, host, vm) as engine:
        existing = _existing(engine, spec.name)
        for name in [n for n in existing if n.endswith(PREVIOUS)]:  # an interrupted update's
            engine.request("DELETE", f"/containers/{existing.pop(name)['Id']}",
                           params={"force": "1", "v": "1"})
        for service in spec.services:
            request = service.request
            assert request.name is not None
            digest = config_hash(request)
            request.labels = {**request.labels, APP_LABEL: spec.name,
                              SERVICE_LABEL: service.name, HASH_LABEL: digest}
            if service.archive and not image_exists(engine, request.image):
                load_image(settings, host, vm, service.archive)
            current = existing.pop(request.name, None)
            if current is None:
                create_and_start(engine, request)
                done.append((service.name, "created"))
            elif (current.get("Labels") or {}).get(HASH_LABEL) != digest:
                _replace(engine, current, request)
                done.append((service.name, "recreated"))
            elif current.get("State") != "running":
                engine.request("POST", f"/containers/{current['Id']}/start")
                done.append((service.name, "started"))
            else:
                done.append((service.name, "unchanged"))
        for name, leftover in existing.items():
            engine.request("DELETE", f"/containers/{leftover['Id']}",
                           params={"force": "1", "v": "1"})
            service_name = (leftover.get("Labels") or {}).get(SERVICE_LABEL, name)
            done.append((service_name, "removed"))
    return done


def remove_app(settings: Settings, host: str, vm: str, app: str) -> list[str]:
    """Remove every container of the app; their names."""
    with engine_of(settings, host, vm) as engine:
        existing = _existing(engine, app)
        if not existing:
            raise NotFound(f"host {host}, VM {vm}: no app named {app!r}")
        for item in existing.values():
            engine.request("DELETE", f"/containers/{item['Id']}",
                           params={"force": "1", "v": "1"})
        return sorted(existing)
