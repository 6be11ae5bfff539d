"""Running Ansible (ansible-core, installed with glasspane) against VMs.

Ansible reaches each VM exactly as glasspane does: its address, the templates' user,
glasspane's key, and glasspane's own known_hosts under the VM's UUID alias, so a host key
glasspane learnt is trusted by Ansible and a changed one is refused by both.

Every run gets a fresh private directory with its inventory (only the target VMs, each
reached over SSH) and its extra variables, written as YAML with every value `!unsafe`:
Ansible takes them as text and never evaluates a template found in one (a VM's label, an
address, a caller's variable).  A run for the server (`sandbox` given) also refuses plays
that target the server, copies the playbook's directory, the key's public half and the
VMs' known host keys into that directory, holds the private key in an agent outside
(guests.key_agent) and runs ansible-playbook in the sandbox (guests.sandbox).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glasspane.errors import CommandFailed, GuestError
from glasspane.guests.ansible_checks import (
    check_extra_vars,
    check_inventory_name,
    check_playbook_file,
    is_local,
)
from glasspane.guests.ansible_files import known_host_lines, write_yaml
from glasspane.guests.key_agent import agent_holding
from glasspane.guests.sandbox import INSIDE, Sandbox
from glasspane.guests.ssh import SshTarget
from glasspane.hypervisors.base import ip_addresses
from glasspane.process import PIPE, STDOUT, call, require, spawn
from glasspane.process import run as run_program

_TASK_LINE = re.compile(rb"^(TASK|RUNNING HANDLER) \[", re.MULTILINE)
_KNOBS = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
          "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_DEPRECATION_WARNINGS": "0",
          "PYTHONUNBUFFERED": "1"}


def host_vars(target: SshTarget, identity: Path | None = None,
              known_hosts: Path | None = None) -> dict[str, Any]:
    """The connection variables of one VM, for an inventory (the key and known_hosts
    where the run sees them, glasspane's own by default)."""
    return {
        "ansible_host": target.address,
        "ansible_connection": "ssh",  # an explicit `localhost` VM is still reached over SSH
        "ansible_user": target.user,
        "ansible_ssh_private_key_file": str(identity or target.identity),
        "ansible_ssh_common_args": shlex.join([
            "-o", f"UserKnownHostsFile={known_hosts or target.known_hosts}",
            "-o", f"HostKeyAlias=glasspane-{target.vm_uuid}",
            "-o", "StrictHostKeyChecking=accept-new", "-o", "IdentitiesOnly=yes"]),
        "ansible_python_interpreter": "/usr/bin/python3",
        "glasspane_host": target.host,
        "glasspane_vm_uuid": target.vm_uuid,
    }


def ansible_program(name: str) -> str:
    """ansible-playbook (or another of its programs) from glasspane's own environment first:
    the version glasspane was tested with."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return require(name)


@dataclass(frozen=True)
class PlaybookRun:
    status: int
    tasks: int       # tasks the playbook started (per play, not per host)
    recap: str       # the PLAY RECAP lines: what changed and failed on each VM


@dataclass(frozen=True)
class _Prepared:
    """One run's files and how to start ansible-playbook with them."""

    work: Path                       # the private directory, as the server sees it
    playbook: str                    # as ansible-playbook sees them
    inventory: str
    extra_vars: str
    sandbox: Sandbox | None

    def command(self, *args: str) -> list[str]:
        argv = [ansible_program("ansible-playbook"), "-i", self.inventory,
                "--extra-vars", f"@{self.extra_vars}", *args, self.playbook]
        return argv if self.sandbox is None else self.sandbox.command(self.work, argv)

    def popen_args(self) -> dict[str, Any]:
        """The environment and directory ansible-playbook runs with."""
        if self.sandbox is None:
            return {"env": {**os.environ, **_KNOBS},
                    "cwd": str(Path(self.playbook).parent)}
        return {"env": self.sandbox.environment(
            {**_KNOBS, "SSH_AUTH_SOCK": str(INSIDE / "agent" / "sock")})}


@contextmanager
def _prepared(playbook: Path, targets: Sequence[tuple[str, SshTarget]],
              extra_vars: dict[str, Any] | None, sandbox: Sandbox | None
              ) -> Iterator[_Prepared]:
    check_extra_vars(extra_vars)
    for name, target in targets:
        check_inventory_name(name)
        if ip_addresses([target.address]) != [target.address]:
            raise GuestError(f"address {target.address[:64]!r} is not an IP address",
                             host=target.host, vm=target.vm)
        if is_local(target.address):  # a guest that says it is 127.0.0.1 is not
            raise GuestError(f"address {target.address} is this machine's own",
                             host=target.host, vm=target.vm)
    if sandbox is not None:
        sandbox.check()
        check_playbook_file(playbook)
    # In the temporary directory, 0700: the sandbox's user crosses only /tmp to reach its
    # agent's socket.
    work = Path(tempfile.mkdtemp(prefix="glasspane-ansible-"))
    try:
        # Inside the sandbox the run's directory is INSIDE; locally it is where it is.
        seen = INSIDE if sandbox is not None else work
        keys: list[Path] = []
        if sandbox is not None:
            shutil.copytree(playbook.parent, work / "play", symlinks=True,
                            ignore=_not_into(work))
            hosts, keys = _private_access(work, seen, targets)
            played = seen / "play" / playbook.name
        else:
            hosts = {name: host_vars(t) for name, t in targets}
            played = playbook.absolute()
        write_yaml(work / "inventory.yml", {"all": {"hosts": hosts}})
        write_yaml(work / "extra-vars.yml", extra_vars or {})
        prepared = _Prepared(work, str(played), str(seen / "inventory.yml"),
                             str(seen / "extra-vars.yml"), sandbox)
        if sandbox is None:
            yield prepared
            return
        sandbox.hand_over(work)
        with agent_holding(keys, work / "agent" / "sock", sandbox.run_as()):
            yield prepared
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _not_into(work: Path) -> Callable[[str, list[str]], list[str]]:
    """For copytree: never the run's own directory (a playbook in the temporary directory
    would copy the run into itself)."""
    def ignored(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(directory, n) in (work, work.parent)]
    return ignored


def _private_access(work: Path, seen: Path, targets: Sequence[tuple[str, SshTarget]]
                    ) -> tuple[dict[str, Any], list[Path]]:
    """The host variables of a sandboxed run, and the private keys its agent is to hold.
    The run's directory gets the public halves (ssh picks the agent's key by them) and the
    targets' known host keys (glasspane's known_hosts is out of the sandbox's sight).  Host
    keys Ansible learns there are not copied back: glasspane learns its own."""
    ssh = work / "ssh"
    ssh.mkdir(mode=0o700)
    (work / "agent").mkdir(mode=0o700)
    keys: dict[Path, Path] = {}
    for _, target in targets:
        if target.identity not in keys:
            keys[target.identity] = ssh / f"id-{len(keys)}.pub"
            keys[target.identity].write_text(_public_half(target.identity))
    stores = {t.known_hosts for _, t in targets}
    (ssh / "known_hosts").write_text("".join(
        known_host_lines(store, [f"glasspane-{t.vm_uuid}" for _, t in targets])
        for store in sorted(stores)))
    hosts = {name: host_vars(t, seen / "ssh" / keys[t.identity].name,
                             seen / "ssh" / "known_hosts") for name, t in targets}
    return hosts, list(keys)


def _public_half(identity: Path) -> str:
    public = identity.with_name(identity.name + ".pub")
    if public.is_file():
        return public.read_text()
    return run_program([require("ssh-keygen"), "-y", "-f", str(identity)],
                       f"reading the public half of SSH key {identity.name}", timeout=30)


def count_tasks(run: _Prepared, limit: str) -> int:
    """How many tasks the playbook lists (for progress); 0 when it cannot tell."""
    try:
        done = call(run.command("--limit", limit, "--list-tasks"), "listing the playbook's tasks",
                    timeout=120, name="ansible-playbook", **run.popen_args())
    except CommandFailed:
        return 0
    if done.returncode != 0:
        return 0
    # Listed tasks are the indented lines under "tasks:" that carry "TAGS:".
    return sum(1 for line in done.stdout.decode(errors="replace").splitlines()
               if "TAGS:" in line and not line.strip().startswith("play #"))


def run_playbook(playbook: Path, targets: Sequence[tuple[str, SshTarget]],
                 on_output: Callable[[bytes], None], *,
                 extra_vars: dict[str, Any] | None = None, timeout: float = 3600,
                 on_task: Callable[[int, int], None] | None = None,
                 sandbox: Sandbox | None = None) -> PlaybookRun:
    """Run `playbook` against the VMs (inventory name, how to reach it); output streamed to
    `on_output`, `on_task(n, total)` told as the n-th task of about `total` starts.  With
    `sandbox` (the server's runs), inside it.  UsageError for a refused variable or play,
    Unavailable when the sandbox cannot be made, CommandFailed when the run times out."""
    # Absolute: ansible-playbook runs in the playbook's directory (its relative includes and
    # files resolve there), where a path relative to ours would name nothing.
    playbook = playbook.absolute()
    # Only the target VMs: a play's hosts never reach the implicit localhost.
    limit = ",".join(name for name, _ in targets)
    with _prepared(playbook, targets, extra_vars, sandbox) as run:
        total = count_tasks(run, limit) if on_task is not None else 0
        tasks, text = 0, bytearray()
        with spawn(run.command("--limit", limit), f"running playbook {playbook.name}",
                   timeout=timeout, stdout=PIPE, stderr=STDOUT, name="ansible-playbook",
                   **run.popen_args()) as process:
            assert process.stdout is not None
            for line in process.stdout:
                on_output(line)
                text += line
                if _TASK_LINE.match(line):
                    tasks += 1
                    if on_task is not None:
                        on_task(tasks, max(total, tasks))
            status = process.finish(bytes(text))
    recap = text.decode(errors="replace").partition("PLAY RECAP")[2].strip()
    return PlaybookRun(status, tasks, recap)
