"""glasspane's VMs as an Ansible inventory (the dynamic inventory protocol: `--list` prints
every group and, under `_meta.hostvars`, how to reach each VM; `--host NAME` one VM's
variables), and the VMs a `vm configure` selects by name or label.

Only running VMs with an address are listed: they are the ones a playbook can reach.  Groups:
`host_NAME` (the hypervisor host), `template_NAME`, `label_KEY_VALUE` and `label_KEY`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from glasspane.errors import NotFound, UsageError
from glasspane.guests.access import running_vms, ssh_target
from glasspane.guests.ansible import host_vars
from glasspane.guests.ssh import SshTarget
from glasspane.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class ReachableVm:
    name: str            # its name in the inventory (VM name, or HOST.VM when two hosts share
    target: SshTarget    # a name)
    template: str | None
    labels: dict[str, str]


def group_name(*parts: str) -> str:
    """A valid Ansible group name: letters, digits and '_'."""
    return _UNSAFE.sub("_", "_".join(parts)).lower()


def reachable_vms(settings: Settings, hosts: list[str] | None = None
                  ) -> tuple[list[ReachableVm], list[str]]:
    """Every running VM with an address on the hosts (default: all registered), and a
    message for each host that could not be asked."""
    found, failures = running_vms(settings, hosts)
    problems = [f"host {host}: {exc}" if vm is None else str(exc)
                for host, vm, exc in failures]
    counts = Counter(v.summary.name for v in found)
    return [ReachableVm(v.summary.name if counts[v.summary.name] == 1
                        else f"{v.host}.{v.summary.name}",
                        ssh_target(settings, v.host, v.summary.name, v.summary.uuid,
                                   v.address),
                        v.summary.template, dict(v.summary.labels))
            for v in found], problems


def inventory_list(vms: list[ReachableVm]) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for vm in vms:
        keys = [group_name("host", vm.target.host)]
        if vm.template:
            keys.append(group_name("template", vm.template))
        for key, value in vm.labels.items():
            keys += [group_name("label", key), group_name("label", key, value)]
        for key in keys:
            groups.setdefault(key, []).append(vm.name)
    document: dict[str, Any] = {
        "_meta": {"hostvars": {vm.name: _vars(vm) for vm in vms}},
        "all": {"children": [*sorted(groups), "ungrouped"]},
        "ungrouped": {"hosts": []},
    }
    for key, members in sorted(groups.items()):
        document[key] = {"hosts": sorted(members)}
    return document


def _vars(vm: ReachableVm) -> dict[str, Any]:
    # Names, the template and labels are whatever was written on the hypervisor: Ansible
    # would evaluate a template in one (on the machine running the playbook) unless told
    # that it is text.  The connection variables are glasspane's own or checked (addresses).
    return {**host_vars(vm.target), "glasspane_host": _text(vm.target.host),
            "glasspane_vm": _text(vm.target.vm),
            "glasspane_template": None if vm.template is None else _text(vm.template),
            "glasspane_labels": {k: _text(v) for k, v in vm.labels.items()}}


def _text(value: str) -> dict[str, str]:
    """A value Ansible's inventory JSON marks as never to be templated."""
    return {"__ansible_unsafe": value}


def inventory_host(vms: list[ReachableVm], name: str) -> dict[str, Any]:
    return next((_vars(vm) for vm in vms if vm.name == name), {})


def select(vms: list[ReachableVm], names: list[str], label: str | None) -> list[ReachableVm]:
    """The VMs named (by VM name or HOST.VM) and/or carrying label KEY=VALUE (or KEY)."""
    if not names and not label:
        raise UsageError("name at least one VM, or --label KEY=VALUE")
    chosen = []
    for name in names:
        match = [vm for vm in vms if name in (vm.name, vm.target.vm,
                                              f"{vm.target.host}.{vm.target.vm}")]
        if not match:
            raise NotFound(f"no running VM named {name!r} with an address",
                           hint="`glasspane vm list` shows them; start it first")
        if len(match) > 1:
            raise UsageError(f"VM name {name!r} is on several hosts",
                             hint="name it HOST.VM")
        chosen += match
    if label:
        key, sep, value = label.partition("=")
        match = [vm for vm in vms if key in vm.labels and (not sep or vm.labels[key] == value)]
        if not match:
            raise NotFound(f"no running VM carries label {label!r}",
                           hint="`glasspane vm list` shows the labels")
        chosen += [vm for vm in match if vm not in chosen]
    return chosen
