"""`glasspane app deploy|validate|list|remove`: several containers from one compose-style file."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from glasspane.cli.container import report_failures
from glasspane.cli.remote import Remote, remote_of
from glasspane.cli.table import echo_table
from glasspane.containers import app as apps
from glasspane.containers.service import list_containers
from glasspane.settings import Settings


@click.group()
def app() -> None:
    """Apps: groups of containers described by one YAML file, deployed into a VM."""


@app.command()
@click.argument("vm")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="local", show_default=True, help="The VM's host.")
def deploy(vm: str, spec: str, host: str) -> None:
    """Deploy the app described by SPEC into VM, or update it in place: unchanged services
    keep running, changed ones are recreated, ones gone from SPEC are removed (with
    --server: SPEC's directory, its image archives included, is sent to the server)."""
    remote = remote_of(click.get_current_context())
    if remote is None:
        done = apps.deploy_app(Settings.load(), host, vm, Path(spec))
    else:
        with _sent(remote, Path(spec)) as context:
            task = remote.post(f"/vms/{host}/{vm}/apps", {"context": context,
                                                          "spec": Path(spec).name})
            result = remote.wait(task)["result"]
        done = [(s["service"], s["action"]) for s in result["services"]]
    for service, action in done:
        click.echo(f"VM {vm}: service {service} {action}")


@contextmanager
def _sent(remote: Remote, spec: Path) -> Iterator[str]:
    parsed = apps.parse_app(spec)  # mistakes are found here, before anything is sent
    with remote.sent_context(spec, [s.archive for s in parsed.services if s.archive],
                             f"{parsed.name}.app-context.tar") as context:
        yield context


@app.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
def validate(spec: str) -> None:
    """Check SPEC without deploying it."""
    parsed = apps.parse_app(Path(spec))
    names = [s.name for s in parsed.services]
    remote = remote_of(click.get_current_context())
    if remote is not None:
        with _sent(remote, Path(spec)) as context:
            names = remote.post("/apps/validate", {"context": context,
                                                   "spec": Path(spec).name})["services"]
    click.echo(f"{spec}: app {parsed.name}, services {', '.join(names)} (in start order)")


@app.command("list")
@click.argument("vm", required=False)
@click.option("--host", default=None, help="Only this host's VMs (default: every host).")
def list_apps(vm: str | None, host: str | None) -> None:
    """The apps in VM, or in every running VM, with their containers' states."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        found = remote.get("/apps", host=host, vm=vm)
        echo_table(("HOST", "VM", "APP", "CONTAINERS"), [
            (a["host"], a["vm"], a["name"],
             ", ".join(f"{c['name']} {c['state']}" for c in a["containers"])) for a in found])
        return
    listing = list_containers(Settings.load(), vm, host, all_=True)
    grouped: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for row in listing.containers:
        if row.app:
            grouped[(row.host, row.vm, row.app)].append(f"{row.name} {row.state}")
    echo_table(("HOST", "VM", "APP", "CONTAINERS"),
               [(*key, ", ".join(names)) for key, names in sorted(grouped.items())])
    report_failures(listing)


@app.command()
@click.argument("vm")
@click.argument("name")
@click.option("--host", default="local", show_default=True, help="The VM's host.")
def remove(vm: str, name: str, host: str) -> None:
    """Remove every container of app NAME from VM."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        task = remote.delete(f"/vms/{host}/{vm}/apps/{name}")
        removed = remote.wait(task, quiet=True)["result"]["removed"]
    else:
        removed = apps.remove_app(Settings.load(), host, vm, name)
    click.echo(f"VM {vm}: app {name} removed ({', '.join(removed)})")
