"""Containers inside VMs, shared by the CLI and the API: list across VMs in parallel, inspect,
act on, run, read logs/top/stats, and load images from tarballs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from glasspane.containers import sessions
from glasspane.containers.engine import CHANGE_TIMEOUT, DEFAULT_TIMEOUT, Engine, EngineInfo, quoted
from glasspane.containers.logs import demultiplex, raw
from glasspane.errors import Conflict, GuestUnreachable
from glasspane.guests.access import guest_target, running_targets
from glasspane.guests.ssh import SshTarget
from glasspane.settings import Settings

MAX_PARALLEL_VMS = 8
APP_LABEL = "io.glasspane.app"
ACTIONS = ("start", "stop", "restart", "pause", "unpause")

T = TypeVar("T")


@dataclass(frozen=True)
class ContainerRow:
    host: str
    vm: str
    id: str
    name: str
    image: str
    state: str
    status: str
    ports: list[str]
    created: str
    app: str | None


@dataclass(frozen=True)
class VmFailure:
    host: str
    vm: str | None
    error: str


@dataclass
class Listing:
    containers: list[ContainerRow] = field(default_factory=list)
    failures: list[VmFailure] = field(default_factory=list)


@contextmanager
def kept_engine(settings: Settings, target: SshTarget) -> Iterator[Engine]:
    """The VM's kept engine; a broken connection is dropped so the next call makes a new
    one."""
    try:
        yield sessions.engine(settings, target)
    except GuestUnreachable:
        sessions.forget(settings, target)
        raise


@contextmanager
def engine_of(settings: Settings, host: str, vm: str) -> Iterator[Engine]:
    with kept_engine(settings, guest_target(settings, host, vm)) as engine:
        yield engine


def engine_info(settings: Settings, host: str, vm: str) -> EngineInfo:
    with engine_of(settings, host, vm) as engine:
        return engine.info


def format_ports(ports: list[dict[str, Any]]) -> list[str]:
    shown = []
    for port in ports or []:
        inside = f"{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"
        if port.get("PublicPort"):
            address = port.get("IP") or "0.0.0.0"  # noqa: S104 - how engines show "any"
            shown.append(f"{address}:{port['PublicPort']}->{inside}")
        else:
            shown.append(inside)
    return sorted(set(shown))


def _text(value: Any, size: int) -> str:
    """A value the engine reported, as the inventory's column of `size` holds it: the engine
    is the guest's, and a name longer than the column or holding a NUL would fail the whole
    inventory pass on PostgreSQL, every other VM's containers with it."""
    return str(value).replace("\0", "")[:size]


def _row(target: SshTarget, item: dict[str, Any]) -> ContainerRow:
    created = item.get("Created")
    try:
        when = (dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="seconds")
                if isinstance(created, int | float) else str(created or ""))
    except (OverflowError, OSError, ValueError):  # a time no calendar has
        when = ""
    names = item.get("Names") or [str(item.get("Id", ""))[:12]]
    app = (item.get("Labels") or {}).get(APP_LABEL)
    return ContainerRow(target.host, target.vm, _text(item.get("Id", ""), 12),
                        _text(str(names[0]).lstrip("/"), 255), _text(item.get("Image", ""), 512),
                        _text(item.get("State", ""), 16), _text(item.get("Status", ""), 255),
                        [_text(p, 64) for p in format_ports(item.get("Ports") or [])[:64]],
                        _text(when, 32), None if app is None else _text(app, 64))


def _list_one(settings: Settings, target: SshTarget, all_: bool, timeout: float
              ) -> list[ContainerRow]:
    with kept_engine(settings, target) as engine:
        items = engine.json("GET", "/containers/json", params={"all": "1" if all_ else "0"},
                            timeout=timeout)
    return sorted((_row(target, item) for item in items or []), key=lambda r: r.name)


def list_containers(settings: Settings, vm: str | None = None, host: str | None = None,
                    all_: bool = False, timeout: float = DEFAULT_TIMEOUT) -> Listing:
    """Containers of one VM, or of every running VM (of one host or all) polled in parallel;
    a VM that fails is reported in `failures` and never hides the others."""
    if vm is not None:
        target = guest_target(settings, host or "local", vm)
        return Listing(_list_one(settings, target, all_, timeout))
    targets, host_failures = running_targets(settings, [host] if host else None)
    listing = list_on(settings, targets, all_, timeout)
    listing.failures += [VmFailure(h, v, str(e)) for h, v, e in host_failures]
    listing.failures.sort(key=lambda f: (f.host, f.vm or ""))
    return listing


def list_on(settings: Settings, targets: list[SshTarget], all_: bool = False,
            timeout: float = DEFAULT_TIMEOUT) -> Listing:
    """The containers of each of `targets`, asked in parallel (at most MAX_PARALLEL_VMS at a
    time); a VM that fails is in `failures`."""
    listing = Listing()
    if not targets:
        return listing
    pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_VMS, len(targets)))
    futures = {pool.submit(_list_one, settings, t, all_, timeout): t for t in targets}
    # Each call is bounded by its own timeouts; this bounds the whole listing even if one
    # VM's SSH handshake hangs longer than it should.
    done, _ = wait(futures, timeout=timeout + 40)
    pool.shutdown(wait=False, cancel_futures=True)
    for future, target in futures.items():
        if future not in done:
            listing.failures.append(VmFailure(target.host, target.vm,
                                              f"no answer within {timeout + 40:.0f} s"))
        elif (exc := future.exception()) is not None:
            listing.failures.append(VmFailure(target.host, target.vm, str(exc)))
        else:
            listing.containers += future.result()
    listing.containers.sort(key=lambda r: (r.host, r.vm, r.name))
    listing.failures.sort(key=lambda f: (f.host, f.vm or ""))
    return listing


def inspect(settings: Settings, host: str, vm: str, container: str) -> dict[str, Any]:
    with engine_of(settings, host, vm) as engine:
        data: dict[str, Any] = engine.json("GET", f"/containers/{quoted(container)}/json")
        return data


def act(settings: Settings, host: str, vm: str, container: str, action: str,
        timeout: float = 10) -> str:
    """start | stop | restart | pause | unpause; the container's state afterwards."""
    if action not in ACTIONS:
        raise ValueError(action)
    params = {"t": str(int(timeout))} if action in ("stop", "restart") else None
    with engine_of(settings, host, vm) as engine:
        engine.request("POST", f"/containers/{quoted(container)}/{action}", params=params,
                       timeout=CHANGE_TIMEOUT + timeout)
        state = engine.json("GET", f"/containers/{quoted(container)}/json")["State"]
        return str(state.get("Status", "?"))


def remove(settings: Settings, host: str, vm: str, container: str, force: bool = False
           ) -> None:
    with engine_of(settings, host, vm) as engine:
        engine.request("DELETE", f"/containers/{quoted(container)}",
                       params={"force": "1" if force else "0", "v": "1"})


def logs(settings: Settings, host: str, vm: str, container: str, follow: bool = False,
         tail: int | None = None) -> Iterator[tuple[str, bytes]]:
    """(stream, bytes) as the engine sends them; with `follow`, until the container stops or
    the caller stops reading."""
    with engine_of(settings, host, vm) as engine:
        tty = engine.json("GET", f"/containers/{quoted(container)}/json")["Config"].get("Tty")
        params = {"stdout": "1", "stderr": "1", "follow": "1" if follow else "0",
                  "tail": "all" if tail is None else str(tail)}
        # Following waits for output indefinitely: only the SSH keep-alive bounds it.
        with engine.stream("GET", f"/containers/{quoted(container)}/logs", params=params,
                           timeout=10**6 if follow else DEFAULT_TIMEOUT) as (_, chunks):
            yield from (raw(chunks) if tty else demultiplex(chunks))


def top(settings: Settings, host: str, vm: str, container: str
        ) -> tuple[list[str], list[list[str]]]:
    with engine_of(settings, host, vm) as engine:
        data = _of_running(engine.json("GET", f"/containers/{quoted(container)}/top"), host,
                           vm, container)
        return list(data.get("Titles") or []), [list(p) for p in data.get("Processes") or []]


def _of_running(data: Any, host: str, vm: str, container: str) -> dict[str, Any]:
    """An engine's answer about a running container; Podman answers a stopped one with
    nothing at all."""
    if not isinstance(data, dict):
        raise Conflict(f"host {host}, VM {vm}: container {container} is not running",
                       hint=f"`glasspane container start {vm} {container}` first")
    return data


@dataclass(frozen=True)
class ContainerStats:
    cpu_percent: float
    memory_bytes: int
    memory_limit: int
    pids: int
    network_rx: int
    network_tx: int


def stats(settings: Settings, host: str, vm: str, container: str) -> ContainerStats:
    with engine_of(settings, host, vm) as engine:
        data = _of_running(engine.json("GET", f"/containers/{quoted(container)}/stats",
                                       params={"stream": "false"}), host, vm, container)
    cpu, pre = data.get("cpu_stats") or {}, data.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - \
        (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or 1
    memory = data.get("memory_stats") or {}
    networks = (data.get("networks") or {}).values()
    return ContainerStats(
        round(used / system * cpus * 100, 2) if system > 0 and used > 0 else 0.0,
        int(memory.get("usage", 0)), int(memory.get("limit", 0)),
        int((data.get("pids_stats") or {}).get("current", 0)),
        sum(int(n.get("rx_bytes", 0)) for n in networks),
        sum(int(n.get("tx_bytes", 0)) for n in networks))


def list_images(settings: Settings, host: str, vm: str) -> list[dict[str, Any]]:
    with engine_of(settings, host, vm) as engine:
        return [{"id": str(i.get("Id", "")).removeprefix("sha256:")[:12],
                 "tags": list(i.get("RepoTags") or []), "size": int(i.get("Size", 0)),
                 "created": int(i.get("Created", 0))}
                for i in engine.json("GET", "/images/json") or []]
