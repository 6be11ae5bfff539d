"""One-time console tickets: what a console's WebSocket needs besides the user's session.

A ticket is issued by a normal authenticated call (a POST, so a cookie-authenticated page
needs the CSRF header to get one), bound to the user, the VM and the console, valid for TTL
seconds and good for one socket.  A browser opens a WebSocket with its cookies whatever page
asks it to; the ticket, which only this origin's script can have read, is what makes the socket
the user's own request.

Tickets live in the memory of the instance that issued them.  That is enough: a client asks
for a ticket and opens its socket on the same server within a second, and several instances
sharing PostgreSQL are reached through one address whose balancer must keep a client on one
instance for WebSockets anyway (a console is a long connection to one instance).  A ticket
presented to another instance is refused as unknown (401), and asking again fixes it.  Kept
in the database, a ticket would outlive a restart for no one's benefit.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from glasspane.enums import ConsoleKind

TTL = 60.0           # s a ticket is good for (the issue's bound: within a minute)
MAX_TICKETS = 10_000  # unredeemed at once: a loop asking for tickets cannot fill the memory


@dataclass(frozen=True)
class Ticket:
    user: str
    host: str
    vm: str
    kind: ConsoleKind
    expires: float


class TicketRefused(Exception):
    """Why a ticket does not open this socket (said to the client as it is)."""


class TicketBook:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tickets: dict[str, Ticket] = {}
        self._lock = threading.Lock()

    def issue(self, user: str, host: str, vm: str, kind: ConsoleKind) -> str:
        now = self._clock()
        secret = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._tickets) >= MAX_TICKETS:
                self._tickets = {k: t for k, t in self._tickets.items() if t.expires > now}
                if len(self._tickets) >= MAX_TICKETS:  # all live: the oldest goes
                    self._tickets.pop(next(iter(self._tickets)))
            self._tickets[secret] = Ticket(user, host, vm, kind, now + TTL)
        return secret

    def redeem(self, secret: str, user: str, host: str, vm: str, kind: ConsoleKind) -> None:
        """Use up the ticket for this socket, or raise TicketRefused.  A ticket presented
        is spent, whether it fits or not: a wrong guess leaves nothing to try again with."""
        with self._lock:
            ticket = self._tickets.pop(secret, None)
        if ticket is None:
            raise TicketRefused("the console ticket is unknown or already used: ask for a "
                                "new one (POST .../console/tickets)")
        if ticket.expires <= self._clock():
            raise TicketRefused(f"the console ticket expired ({TTL:g} s after it was "
                                "issued): ask for a new one")
        if ticket.user != user:
            raise TicketRefused("the console ticket was issued to another user")
        if (ticket.host, ticket.vm, ticket.kind) != (host, vm, kind):
            raise TicketRefused(f"the console ticket is for the {ticket.kind} console of VM "
                                f"{ticket.vm} on host {ticket.host}")


# The instance's tickets (see above for why memory).
TICKETS = TicketBook()
