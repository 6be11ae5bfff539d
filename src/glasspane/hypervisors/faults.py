"""The faults every driver reports alike: the same class and the same words for the same
mistake, whichever hypervisor is behind the host, and one check of a power action against
`VM_ACTION_STATES` for all drivers.  A driver raises these `from` the backend's exception
when there is one."""

from __future__ import annotations

from collections.abc import Iterable

from glasspane.enums import VM_ACTION_STATES, PowerState, VmAction
from glasspane.errors import Conflict, NotFound, UsageError


def no_vm(host: str, vm: str) -> NotFound:
    return NotFound(f"no VM named {vm!r} on host {host}")


def no_snapshot(host: str, vm: str, snapshot: str) -> NotFound:
    return NotFound(f"VM {vm} on host {host} has no snapshot named {snapshot!r}",
                    hint="`glasspane vm info` lists them")


def snapshot_taken(host: str, vm: str, snapshot: str) -> Conflict:
    return Conflict(f"VM {vm} on host {host} already has a snapshot named {snapshot!r}",
                    hint="choose another name")


def vm_taken(host: str, vm: str) -> Conflict:
    return Conflict(f"a VM named {vm!r} already exists on host {host}",
                    hint="choose another name, or destroy that VM first")


def wrong_state(host: str, vm: str, what: str, state: PowerState | str,
                needed: Iterable[PowerState]) -> Conflict:
    wanted = set(needed)
    words = " or ".join(s.value for s in PowerState if s in wanted)
    return Conflict(f"VM {vm} on host {host}: {what}: the VM is {state}, it must be {words}")


def check_state(host: str, vm: str, what: str, state: PowerState,
                needed: Iterable[PowerState]) -> None:
    """Conflict unless the VM's `state` is one of `needed`."""
    wanted = frozenset(needed)
    if state not in wanted:
        raise wrong_state(host, vm, what, state, wanted)


def check_action(host: str, vm: str, action: VmAction | str, state: PowerState) -> VmAction:
    """`action` as a VmAction, once the VM's `state` allows it (VM_ACTION_STATES): a
    UsageError for an unknown action, a Conflict naming the states it needs otherwise."""
    try:
        known = VmAction(action)
    except ValueError as exc:
        raise UsageError(f"unknown VM action {action!r}",
                         hint="one of " + ", ".join(a.value for a in VmAction)) from exc
    check_state(host, vm, known.value, state, VM_ACTION_STATES[known])
    return known
