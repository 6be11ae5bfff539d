"""Which VMs can be reached, and how: the hypervisor says where each running VM is (its
address) and who it is (its UUID); glasspane's key and known_hosts say how to log in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from glasspane.enums import PowerState
from glasspane.errors import GuestError, NotFound
from glasspane.guests.keys import management_key
from glasspane.guests.ssh import SshTarget
from glasspane.hosts.registry import HostRegistry
from glasspane.hosts.service import host_driver
from glasspane.hypervisors.base import VmSummary, ip_addresses
from glasspane.hypervisors.capabilities import Driver
from glasspane.settings import Settings


def known_hosts(settings: Settings) -> Path:
    return settings.data_dir / "ssh_known_hosts"


def ssh_target(settings: Settings, host: str, vm: str, uuid: str, address: str) -> SshTarget:
    """Logging in to the VM as the templates' user with glasspane's key."""
    return SshTarget(host, vm, uuid, address, settings.ssh_user, management_key(settings),
                     known_hosts(settings))


def guest_target(settings: Settings, host: str, vm: str) -> SshTarget:
    """How to reach VM `vm` on `host`; GuestError when it is not running or has no address."""
    with host_driver(settings, host) as driver:
        summary = next((v for v in driver.list_vms() if v.name == vm), None)
        if summary is None:
            raise NotFound(f"no VM named {vm!r} on host {host}",
                           hint="`glasspane vm list` shows them")
        if summary.power_state != PowerState.RUNNING:
            raise GuestError(f"the VM is {summary.power_state}", host=host, vm=vm,
                             hint=f"`glasspane vm start {vm}` first")
        addresses = ip_addresses(driver.vm_addresses(vm))
        if not addresses:
            raise GuestError("the VM has no address yet", host=host, vm=vm,
                             hint="wait for its network to come up")
        return ssh_target(settings, host, vm, summary.uuid, addresses[0])


Failure = tuple[str, str | None, Exception]  # (host, VM or None, what went wrong)


@dataclass(frozen=True)
class RunningVm:
    host: str
    summary: VmSummary
    address: str


def running_vms(settings: Settings, hosts: list[str] | None = None
                ) -> tuple[list[RunningVm], list[Failure]]:
    """Every running VM with an address on the given hosts (default: all registered), and
    the (host, VM or None, error) of each host or VM that could not be looked at."""
    names = hosts if hosts is not None else [r.name for r in HostRegistry(settings)
                                             .all()]
    found: list[RunningVm] = []
    failures: list[Failure] = []
    for host in names:
        try:
            with host_driver(settings, host) as driver:
                found += _running_on(host, driver, failures)
        except Exception as exc:  # one host down must not hide the others' VMs
            failures.append((host, None, exc))
    return found, failures


def running_targets(settings: Settings, hosts: list[str] | None = None
                    ) -> tuple[list[SshTarget], list[Failure]]:
    """How to reach every running VM with an address (see running_vms)."""
    vms, failures = running_vms(settings, hosts)
    return [ssh_target(settings, v.host, v.summary.name, v.summary.uuid, v.address)
            for v in vms], failures


def _running_on(host: str, driver: Driver, failures: list[Failure]
                ) -> list[RunningVm]:
    found = []
    for summary in driver.list_vms():
        if summary.power_state != PowerState.RUNNING:
            continue
        addresses = ip_addresses(driver.vm_addresses(summary.name))
        if not addresses:
            failures.append((host, summary.name,
                             GuestError("the VM has no address yet", host=host,
                                        vm=summary.name)))
            continue
        found.append(RunningVm(host, summary, addresses[0]))
    return found
