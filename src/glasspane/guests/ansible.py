"""Running Ansible (ansible-core, installed with glasspane) against VMs.

Ansible reaches each VM exactly as glasspane does: its address, the templates' user,
glasspane's key, and glasspane's own known_hosts under the VM's UUID alias, so a host key
learnt by one is trusted by the other and a changed one is refused by both.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glasspane.errors import CommandFailed
from glasspane.guests.ssh import SshTarget
from glasspane.process import deadline

_TASK_LINE = re.compile(rb"^(TASK|RUNNING HANDLER) \[", re.MULTILINE)


def host_vars(target: SshTarget) -> dict[str, Any]:
    """The connection variables of one VM, for an inventory."""
    return {
        "ansible_host": target.address,
        "ansible_user": target.user,
        "ansible_ssh_private_key_file": str(target.identity),
        "ansible_ssh_common_args": shlex.join([
            "-o", f"UserKnownHostsFile={target.known_hosts}",
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
    found = shutil.which(name)
    if found is None:
        raise CommandFailed(f"{name} is not installed", command=name,
                            hint="it comes with glasspane (pip install glasspane)")
    return found


@dataclass(frozen=True)
class PlaybookRun:
    status: int
    tasks: int       # tasks the playbook started (per play, not per host)
    recap: str       # the PLAY RECAP lines: what changed and failed on each VM


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_DEPRECATION_WARNINGS": "0",
                "PYTHONUNBUFFERED": "1"})
    return env


def count_tasks(playbook: Path, inventory: Path) -> int:
    """How many tasks `playbook` lists (for progress); 0 when it cannot tell."""
    done = subprocess.run([ansible_program("ansible-playbook"), "-i", str(inventory),
                           "--list-tasks", str(playbook)], capture_output=True,
                          env=_environment(), timeout=120, check=False,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        return 0
    # Listed tasks are the indented lines under "tasks:" that carry "TAGS:".
    return sum(1 for line in done.stdout.decode(errors="replace").splitlines()
               if "TAGS:" in line and not line.strip().startswith("play #"))


def run_playbook(playbook: Path, targets: Sequence[tuple[str, SshTarget]],
                 on_output: Callable[[bytes], None], *,
                 extra_vars: dict[str, Any] | None = None, timeout: float = 3600,
                 on_task: Callable[[int, int], None] | None = None) -> PlaybookRun:
    """Run `playbook` against the VMs (inventory name, how to reach it); output streamed to
    `on_output`, `on_task(n, total)` told as the n-th task of about `total` starts."""
    # Absolute: ansible-playbook runs in the playbook's directory (its relative includes and
    # files resolve there), where a path relative to ours would name nothing.
    playbook = playbook.absolute()
    with tempfile.TemporaryDirectory(prefix="glasspane-ansible-") as work:
        inventory = Path(work) / "inventory.json"
        inventory.write_text(json.dumps({"all": {"hosts": {
            name: host_vars(target) for name, target in targets}}}))
        args = [ansible_program("ansible-playbook"), "-i", str(inventory), str(playbook)]
        if extra_vars:
            variables = Path(work) / "extra-vars.json"
            variables.write_text(json.dumps(extra_vars))
            args += ["--extra-vars", f"@{variables}"]
        total = count_tasks(playbook, inventory) if on_task is not None else 0
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=_environment(),
                                   cwd=str(playbook.parent))
        tasks, text = 0, bytearray()
        with deadline(process, timeout) as expired:
            assert process.stdout is not None
            for line in process.stdout:
                on_output(line)
                text += line
                if _TASK_LINE.match(line):
                    tasks += 1
                    if on_task is not None:
                        on_task(tasks, max(total, tasks))
            status = process.wait()
    if expired.is_set():
        raise CommandFailed(f"ansible-playbook {playbook.name} did not finish within "
                            f"{timeout:.0f} s", command=shlex.join(args),
                            output=text.decode(errors="replace"))
    recap = text.decode(errors="replace").partition("PLAY RECAP")[2].strip()
    return PlaybookRun(status, tasks, recap)
