"""The files of a playbook run: YAML whose every string is `!unsafe` (Ansible takes it as
text, never as a template), and the known host keys of the run's VMs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml


class _Unsafe(str):
    """A string Ansible must not template."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_unsafe(dumper: yaml.SafeDumper, value: _Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(value), style="'")


_Dumper.add_representer(_Unsafe, _represent_unsafe)


def unsafe(value: Any) -> Any:
    """`value` with every string in it (keys aside) marked unsafe."""
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, dict):
        return {str(k): unsafe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unsafe(v) for v in value]
    return value


def write_yaml(path: Path, document: dict[str, Any]) -> None:
    """`document` as YAML, readable by its owner only (extra variables may be secrets)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(yaml.dump(unsafe(document), Dumper=_Dumper, sort_keys=True))


def _names_host(field: str, alias: str) -> bool:
    """Whether a known_hosts line's host field names `alias`, plainly or hashed
    (`|1|salt|hash`, as ssh writes with HashKnownHosts)."""
    if field.startswith("|1|"):
        try:
            salt, digest = (base64.b64decode(p) for p in field[3:].split("|", 1))
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(hmac.new(salt, alias.encode(), hashlib.sha1).digest(),
                                   digest)
    return alias in field.split(",")


def known_host_lines(store: Path | None, aliases: Iterable[str]) -> str:
    """The lines of known_hosts file `store` for the host aliases."""
    if store is None or not store.is_file():
        return ""
    wanted = list(aliases)
    kept = []
    for line in store.read_text(errors="replace").splitlines():
        field = line.split(" ", 1)[0]
        if line.startswith("@"):  # @cert-authority / @revoked: marker, then the hosts
            field = line.split(" ", 2)[1] if line.count(" ") >= 2 else ""
        if any(_names_host(field, alias) for alias in wanted):
            kept.append(line + "\n")
    return "".join(kept)
