"""An ssh-agent holding glasspane's key for one sandboxed playbook run.

The run must log in to its VMs, but glasspane's key reaches every VM glasspane made: a
playbook that could read the key (a `file` lookup) could take it away.  So the key never
enters the sandbox.  An agent outside it, started for the run as the sandbox's user, holds
the key; the sandbox gets the agent's socket (it may sign, never read) and the public half.
The agent lives in another PID namespace than the run and is not dumpable: the run cannot
reach into it.  It stops when the run ends.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glasspane.errors import CommandFailed, Unavailable

STARTUP = 10.0  # seconds for ssh-agent to make its socket


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise Unavailable(f"{name} is not installed",
                          hint="install Debian's openssh-client")
    return found


@contextmanager
def agent_holding(keys: list[Path], socket: Path, as_user: dict[str, Any]
                  ) -> Iterator[None]:
    """An agent listening on `socket` (in a directory of the user's) with `keys` loaded,
    running as `as_user` (subprocess's user/group/extra_groups) until the block ends."""
    agent = subprocess.Popen([_program("ssh-agent"), "-D", "-a", str(socket)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"},
                             **as_user)
    try:
        began = time.monotonic()
        while not socket.exists():
            if agent.poll() is not None or time.monotonic() - began > STARTUP:
                error = agent.stderr.read().decode(errors="replace") if agent.stderr else ""
                raise CommandFailed("ssh-agent did not start", command="ssh-agent -D",
                                    output=error)
            time.sleep(0.02)
        for key in keys:
            added = subprocess.run([_program("ssh-add"), "-q", "-"], input=key.read_bytes(),
                                   capture_output=True, timeout=30, check=False,
                                   env={"PATH": "/usr/bin:/bin", "SSH_AUTH_SOCK": str(socket)},
                                   **as_user)
            if added.returncode != 0:
                raise CommandFailed(f"loading the SSH key {key.name} into the run's agent "
                                    f"failed", command="ssh-add -",
                                    output=added.stderr.decode(errors="replace"))
        yield
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
