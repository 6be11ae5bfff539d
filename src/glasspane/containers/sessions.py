"""The kept engines: one per VM identity (host, VM UUID, address, user) for the life of the
process, so that the server and a bulk listing reuse SSH channels and HTTP connections.  A
connection that failed is dropped, and the next call makes a new one."""

from __future__ import annotations

import threading

from glasspane.containers.engine import Engine
from glasspane.guests.ssh import SshConnection, SshTarget
from glasspane.settings import Settings

_engines: dict[tuple[str, str], Engine] = {}
_lock = threading.Lock()
_connecting: dict[tuple[str, str], threading.Lock] = {}


def _key(settings: Settings, target: SshTarget) -> tuple[str, str]:
    return str(settings.runtime_dir), f"{target.host}/{target.identity_key}"


def engine(settings: Settings, target: SshTarget) -> Engine:
    key = _key(settings, target)
    with _lock:
        found = _engines.get(key)
        if found is not None:
            return found
        connecting = _connecting.setdefault(key, threading.Lock())
    with connecting:  # one probe per VM, however many threads ask at once
        with _lock:
            if key in _engines:
                return _engines[key]
        made = Engine.connect(SshConnection(target, settings.runtime_dir))
        with _lock:
            _engines[key] = made
        return made


def forget(settings: Settings, target: SshTarget) -> None:
    """Drop the kept engine of `target` (after its connection broke)."""
    key = _key(settings, target)
    with _lock:
        found = _engines.pop(key, None)
    if found is not None:
        found.close()


def forget_vm(host: str, vm: str) -> None:
    """Drop the kept engines and SSH connection of VM `vm` on `host`: after a revert the
    guest's network state is the snapshot's, and connections kept across it are dead."""
    with _lock:
        keys = [k for k, e in _engines.items() if (e.target.host, e.target.vm) == (host, vm)]
        dropped = [_engines.pop(k) for k in keys]
    for found in dropped:
        found.close()
        found.ssh.close()


def close_all() -> None:
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for found in engines:
        found.close()


