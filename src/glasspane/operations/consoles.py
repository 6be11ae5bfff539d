"""Opening a VM's console: the one-time ticket its WebSocket needs (vms/console_tickets.py),
an operation of the catalogue like any other (operators, a VM that runs, audited as
`console.ticket`; the sockets themselves audit `console.open` and `console.close`)."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import Field

from glasspane.enums import ConsoleKind, PowerState
from glasspane.operations.catalogue import Context, Result, operation
from glasspane.operations.vms import VM_PATH, VM_TARGET, VmRef, find_vm
from glasspane.vms.console_tickets import TICKETS, TTL

API = "/api/v1"


class ConsoleRequest(VmRef):
    kind: ConsoleKind = Field(default=ConsoleKind.SERIAL,
                              description="serial (text, to type into) or vnc (the screen)")


class ConsoleTicket(Result):
    ticket: str = Field(description="good for one WebSocket, with the same user's session")
    kind: ConsoleKind
    expires_in: float = Field(description="seconds it stays good for")
    url: str = Field(description="the WebSocket's path; the ticket goes in its `ticket` query "
                                 "parameter")


def socket_path(host: str, name: str, kind: ConsoleKind) -> str:
    """The socket's path, each name escaped: a VM's name is the hypervisor's, and a
    XenServer VM may be called `a/b?c` (the page escapes them the same way)."""
    path = VM_PATH.format(host=quote(host, safe=""), name=quote(name, safe=""))
    return f"{API}{path}/console/{kind}"


@operation("console.ticket", "POST", f"{VM_PATH}/console/tickets", ConsoleRequest,
           ConsoleTicket, resolve=find_vm, target_name=VM_TARGET,
           states=frozenset({PowerState.RUNNING, PowerState.PAUSED}),
           hint="start the VM first", audit_detail=lambda command: str(command.kind))
def console_ticket(context: Context, command: ConsoleRequest) -> ConsoleTicket:
    """A one-time ticket for the VM's serial console or screen, bound to the caller and the
    VM, good for one WebSocket within a minute."""
    secret = TICKETS.issue(context.caller.name, command.host, command.name, command.kind)
    return ConsoleTicket(ticket=secret, kind=command.kind, expires_in=TTL,
                         url=socket_path(command.host, command.name, command.kind))
