"""An ssh-agent holding glasspane's key for one sandboxed playbook run.

The run must log in to its VMs, but glasspane's key reaches every VM glasspane made: a
playbook that could read the key (a `file` lookup) could take it away.  So the key never
enters the sandbox.  An agent outside it, started for the run as the sandbox's user, holds
the key; the sandbox gets the agent's socket (it may sign, never read) and the public half.
The agent lives in another PID namespace than the run and is not dumpable: the run cannot
reach into it.  It stops when the run ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glasspane.errors import ProgramMissing, Unavailable
from glasspane.process import DEVNULL, call, failed, require, spawn, timed_out

STARTUP = 10.0  # seconds for ssh-agent to make its socket
PATH = {"PATH": "/usr/bin:/bin"}


def _program(name: str) -> str:
    """A server without it cannot keep the key out of the sandbox: Unavailable, not a
    failed command."""
    try:
        return require(name)
    except ProgramMissing as exc:
        raise Unavailable(exc.message, hint=exc.hint) from exc


@contextmanager
def agent_holding(keys: list[Path], socket: Path, as_user: dict[str, Any]
                  ) -> Iterator[None]:
    """An agent listening on `socket` (in a directory of the user's) with `keys` loaded,
    running as `as_user` (the sandbox's run_as()) until the block ends."""
    # No deadline of its own: it lives as long as the block, the run, which has one.
    agent = spawn([_program("ssh-agent"), "-D", "-a", str(socket)], "starting the run's agent",
                  timeout=None, stdout=DEVNULL, env=PATH, as_user=as_user)
    try:
        began = time.monotonic()
        while not socket.exists():
            status = agent.poll()
            if status is not None or time.monotonic() - began > STARTUP:
                agent.stop()
                error = agent.stderr.read() if agent.stderr else b""
                if status is None:
                    raise timed_out("ssh-agent", "starting the run's agent", STARTUP, error)
                raise failed("ssh-agent", "starting the run's agent", status, error)
            time.sleep(0.02)
        for key in keys:
            added = call([_program("ssh-add"), "-q", "-"], "loading an SSH key into the agent",
                         input=key.read_bytes(), timeout=30,
                         env={**PATH, "SSH_AUTH_SOCK": str(socket)}, as_user=as_user)
            if added.returncode != 0:
                raise failed("ssh-add", f"loading the SSH key {key.name} into the run's agent",
                             added.returncode, added.stderr)
        yield
    finally:
        agent.stop(grace=10)
        agent.close()

