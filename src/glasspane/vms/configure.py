"""`vm configure`: an Ansible playbook run against provisioned VMs (named, or selected by
label), with progress counted in the playbook's tasks and the play recap as the result."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glasspane.errors import CommandFailed
from glasspane.guests.ansible import run_playbook
from glasspane.guests.sandbox import playbook_sandbox
from glasspane.settings import Settings
from glasspane.vms.ansible_inventory import reachable_vms, select
from glasspane.vms.service import Report, no_report

OUTPUT_KEPT = 64 * 1024  # the end of the playbook's output kept with the task


def configure_vms(settings: Settings, playbook: Path, names: list[str], label: str | None,
                  extra_vars: dict[str, Any] | None = None,
                  on_output: Callable[[bytes], None] | None = None,
                  report: Report = no_report) -> dict[str, Any]:
    """Run `playbook`; its recap and the end of its output.  CommandFailed when the playbook
    fails on any VM (the recap says which)."""
    vms, _ = reachable_vms(settings)
    chosen = select(vms, names, label)
    output = bytearray()

    def collect(chunk: bytes) -> None:
        output.extend(chunk)
        del output[:-OUTPUT_KEPT]
        if on_output is not None:
            on_output(chunk)

    def on_task(number: int, total: int) -> None:
        report(min(99, 100 * (number - 1) // max(1, total)), f"task {number} of {total}")

    report(0, f"running {playbook.name} on {', '.join(v.name for v in chosen)}")
    run = run_playbook(playbook, [(v.name, v.target) for v in chosen], collect,
                       extra_vars=extra_vars, on_task=on_task,
                       sandbox=playbook_sandbox(settings))
    result = {"playbook": playbook.name, "vms": [v.name for v in chosen],
              "status": run.status, "tasks": run.tasks, "recap": run.recap,
              "output": output.decode(errors="replace")}
    if run.status != 0:
        raise CommandFailed(f"playbook {playbook.name} failed (status {run.status})",
                            command=shlex.join(["ansible-playbook", playbook.name]),
                            output=run.recap or output.decode(errors="replace"))
    report(100, "done")
    return result
