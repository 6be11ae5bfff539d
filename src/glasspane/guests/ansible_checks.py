"""What a playbook run may not ask for: variables that change how Ansible connects, and, for
a playbook sent to the server, plays and tasks that run on the server itself.

These checks refuse the plain ways of asking; the sandbox (guests.sandbox) is what holds
when a playbook finds another (a templated `delegate_to`, a role, a `pipe` lookup).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from glasspane.errors import UsageError

# An inventory name Ansible takes literally: no pattern characters, no template.
INVENTORY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
LOCAL_NAMES = ("localhost",)
MAX_DEPTH = 64


def check_extra_vars(extra_vars: dict[str, Any] | None) -> None:
    """UsageError naming the first variable called ansible_*: extra variables override
    everything, and ansible_connection=local (or ansible_host, ansible_ssh_common_args...)
    would make the run connect elsewhere, or nowhere but the controller."""
    for key in extra_vars or {}:
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UsageError(f"extra variable {str(key)[:64]!r} is not a variable name",
                             hint="letters, digits and '_', not starting with a digit")
        if key.lower().startswith("ansible_"):
            raise UsageError(f"extra variable {key!r} is refused: ansible_* variables "
                             f"decide how and where Ansible connects",
                             hint="name your variable otherwise")


def check_inventory_name(name: str) -> None:
    if not INVENTORY_NAME.match(name) or name.lower() in LOCAL_NAMES:
        raise UsageError(f"VM name {name[:64]!r} cannot be a name in Ansible's inventory",
                         hint="rename the VM: letters, digits, '.', '_' and '-'")


def is_local(value: object) -> bool:
    """Whether a host name or address means the machine Ansible runs on."""
    if not isinstance(value, str):
        return False
    text = value.strip().strip("[]").lower()
    if text in LOCAL_NAMES or text.startswith("localhost."):
        return True
    try:
        return ipaddress.ip_address(text).is_loopback or ipaddress.ip_address(text).is_unspecified
    except ValueError:
        return False


def _templated(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class _AnyTagLoader(yaml.SafeLoader):
    """Ansible's YAML with its tags (!unsafe, !vault) read as their plain values."""


def _untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_AnyTagLoader.add_multi_constructor("!", _untagged)


def check_playbook(text: str, name: str) -> None:
    """UsageError naming the play or task of playbook `name` that would run on the server:
    hosts localhost or 127.0.0.1 (Ansible's implicit localhost), a templated hosts pattern,
    connection local, ansible_connection, delegate_to localhost, local_action."""
    try:
        plays = yaml.load(text, Loader=_AnyTagLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"playbook {name} is not valid YAML{where}",
                         hint="check it with ansible-playbook --syntax-check") from None
    if not isinstance(plays, list):
        raise UsageError(f"playbook {name} is not a list of plays")
    for index, play in enumerate(plays):
        where = f"playbook {name}, play {index + 1}"
        if not isinstance(play, dict):
            raise UsageError(f"{where} is not a mapping")
        _check_hosts(play.get("hosts"), where)
        for path, key, value in _entries(play, []):
            _check_entry(key, value, f"{where}{''.join(path)}")


def _check_hosts(hosts: object, where: str) -> None:
    for term in hosts if isinstance(hosts, list) else [hosts]:
        if not isinstance(term, str):
            continue
        if _templated(term):
            raise UsageError(f"{where}: hosts {term[:80]!r} is a template",
                             hint="name the hosts: the VMs' names, a group, or all")
        # The whole pattern (::1), then its terms (a,b or the old a:b); !x excludes x.
        for written in [term, *term.split(","), *re.split(r"[,:]", term)]:
            part = written.strip().lstrip("&")
            if not part.startswith("!") and is_local(part):
                raise UsageError(f"{where}: hosts {part!r} is the server itself; a "
                                 f"playbook runs only on the VMs",
                                 hint="use hosts: all, or the VMs' names")


def _entries(value: object, path: list[str], depth: int = 0,
             seen: set[int] | None = None) -> Iterator[tuple[list[str], str, object]]:
    """Every (path, key, value) of the mappings in `value`, each node visited once (YAML
    aliases may share one node many times)."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > MAX_DEPTH:
        return
    seen.add(id(value))
    if isinstance(value, dict):
        for key, child in value.items():
            yield path, str(key), child
            yield from _entries(child, [*path, f" {str(key)[:40]}"], depth + 1, seen)
    elif isinstance(value, list):
        for number, child in enumerate(value):
            yield from _entries(child, [*path, f"[{number}]"], depth + 1, seen)


def _check_entry(key: str, value: object, where: str) -> None:
    if key == "local_action":
        raise UsageError(f"{where}: local_action runs on the server; a playbook runs only on "
                         f"the VMs")
    if key == "connection" and (_templated(value) or
                                (isinstance(value, str) and value.strip() != "ssh")):
        raise UsageError(f"{where}: connection {str(value)[:40]!r} is refused; a playbook "
                         f"reaches the VMs over SSH only")
    if key.lower().startswith("ansible_connection"):
        raise UsageError(f"{where}: ansible_connection is refused; a playbook reaches the "
                         f"VMs over SSH only")
    if key == "delegate_to" and is_local(value):
        raise UsageError(f"{where}: delegate_to {str(value)[:40]!r} runs on the server; a "
                         f"playbook runs only on the VMs")


def check_playbook_file(playbook: Path) -> None:
    check_playbook(playbook.read_text(errors="replace"), playbook.name)
