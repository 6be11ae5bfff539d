"""`glasspane inventory`: an Ansible dynamic inventory of glasspane's VMs.

    ansible-playbook -i "$(command -v glasspane-inventory)" site.yml

Ansible runs an inventory script with `--list` (every group and host) or `--host NAME`;
`glasspane-inventory` is this command as a program of its own, since Ansible takes a path.
"""

from __future__ import annotations

import json
import sys

import click

from glasspane.cli.operations import local_only
from glasspane.settings import Settings
from glasspane.vms.ansible_inventory import inventory_host, inventory_list, reachable_vms


@click.command()
@click.option("--list", "list_all", is_flag=True, help="Every group and VM (Ansible's call).")
@click.option("--host", "vm", metavar="NAME", help="One VM's variables (Ansible's call).")
@click.option("--on", "hosts", multiple=True, metavar="HOST",
              help="Only the VMs on this glasspane host (repeatable; default: all hosts).")
@local_only()
def inventory(list_all: bool, vm: str | None, hosts: tuple[str, ...]) -> None:
    """Print glasspane's running VMs as an Ansible dynamic inventory (JSON), grouped by
    host, template and label, with the address, user and key that reach each one."""
    vms, problems = reachable_vms(Settings.load(), list(hosts) or None)
    for problem in problems:  # Ansible shows stderr; one host down does not empty the list
        click.echo(f"glasspane inventory: {problem}", err=True)
    if vm is not None and not list_all:
        click.echo(json.dumps(inventory_host(vms, vm), indent=2))
        return
    click.echo(json.dumps(inventory_list(vms), indent=2, sort_keys=True))


def script() -> None:
    """The `glasspane-inventory` program: `glasspane inventory` under a name Ansible can run."""
    from glasspane.cli.main import main
    main(["inventory", *sys.argv[1:]])
