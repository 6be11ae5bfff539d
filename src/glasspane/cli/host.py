"""`glasspane host add|list|info|remove`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from glasspane.cli.remote import remote_of
from glasspane.hosts import service
from glasspane.hosts.registry import DRIVERS, HostRegistry
from glasspane.hypervisors.base import HostInfo
from glasspane.hypervisors.uris import redacted
from glasspane.settings import Settings


def _emit(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group()
def host() -> None:
    """Hypervisor hosts: QEMU/KVM through libvirt, XenServer/XCP-ng pools through XenAPI."""


@host.command("add")
@click.argument("name")
@click.argument("uri")
@click.option("--driver", type=click.Choice(DRIVERS), default="libvirt", show_default=True)
@click.option("--no-check", is_flag=True, help="Register without connecting first.")
@click.option("--user", default="", help="xenapi: the XAPI user (root, or an AD/RBAC user).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False),
              help="xenapi: read the password from this file (default: ask).")
@click.option("--no-verify-tls", is_flag=True,
              help="xenapi over https: do not check the pool master's certificate.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
              help="xenapi over https: trust exactly this certificate (PEM), e.g. the pool "
                   "master's self-signed /etc/xensource/xapi-ssl.pem.")
def add(name: str, uri: str, driver: str, no_check: bool, user: str,
        password_file: str | None, no_verify_tls: bool, ca_file: str | None) -> None:
    """Register host NAME at URI: qemu:///system, qemu+ssh://root@kvm1/system,
    qemu+tls://kvm1/system, or a pool master's https://xcp1.example.com with --driver xenapi
    --user root.  libvirt URIs that would run programs or read files here (qemu+ext,
    command=, socket=, keyfile=, pkipath=, ...) are refused."""
    password = None
    if driver == "xenapi":
        if not user:
            raise click.UsageError("--driver xenapi needs --user")
        if password_file:
            with open(password_file) as f:
                password = f.read().rstrip("\n")
        else:
            password = click.prompt(f"password of {user} on {uri}", hide_input=True)
    remote = remote_of(click.get_current_context())
    if remote is not None:
        ca_pem = Path(ca_file).read_text() if ca_file else None
        added = remote.post("/hosts", {"name": name, "uri": uri, "driver": driver,
                                       "check": not no_check, "user": user,
                                       "password": password, "verify_tls": not no_verify_tls,
                                       "ca_pem": ca_pem})
        click.echo(f"added host {added['name']}: {added['uri']} ({added['state']})")
        return
    record = service.add_host(Settings.load(), name, uri, driver, check=not no_check,
                              user=user, password=password, verify_tls=not no_verify_tls,
                              ca_file=ca_file)
    click.echo(f"added host {record.name}: {redacted(record.uri, query=True)}")


@host.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_hosts(as_json: bool) -> None:
    """The registered hosts."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        items = remote.get("/hosts", limit=1000)["items"]
        if as_json:
            _emit(items)
            return
        for item in items:
            click.echo(f"{item['name']}  {item['driver']:<8} {item['state']:<11} {item['uri']}")
        return
    # A password in a URI (a XenServer URL's user:password@) is shown to no one.
    records = [dataclasses.replace(r, uri=redacted(r.uri, query=True))
               for r in HostRegistry(Settings.load()).all()]
    if as_json:
        _emit([{"name": r.name, "uri": r.uri, "driver": r.driver, "user": r.user,
                "verify_tls": r.verify_tls, "pinned_certificate": bool(r.ca_pem)}
               for r in records])
        return
    width = max(len(r.name) for r in records)
    for r in records:
        click.echo(f"{r.name:<{width}}  {r.driver:<8} {r.uri}")


@host.command("info")
@click.argument("name", default="local")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(name: str, as_json: bool) -> None:
    """CPU, memory, storage, acceleration and VMs of host NAME (default: local)."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        data = remote.get(f"/hosts/{name}/facts")
        facts = HostInfo.from_dict(data)
    else:
        facts = service.host_info(Settings.load(), name)
    if as_json:
        _emit(dataclasses.asdict(facts))
        return
    lines = [
        ("host", f"{facts.name} ({facts.uri}, {facts.driver})"),
        ("hostname", facts.hostname),
        ("hypervisor", facts.hypervisor),
        ("CPU", f"{facts.cpus} x {facts.cpu_model}"),
        ("memory", f"{facts.memory_mib} MiB, {facts.free_memory_mib} MiB free"),
        ("acceleration", f"{facts.acceleration.kind}: {facts.acceleration.reason}"),
    ]
    for pool in facts.storage:
        lines.append((f"storage {pool.name}", f"{pool.path or '-'}: {pool.available >> 30} GiB "
                      f"free of {pool.capacity >> 30} GiB"
                      + ("" if pool.active else " (inactive)")))
    for network in facts.networks:
        lines.append((f"network {network.name}", (network.bridge or "-")
                      + ("" if network.active else " (inactive)")))
    lines.append(("VMs", str(len(facts.vms)) if facts.vms else "none"))
    for vm in facts.vms:
        lines.append(("", f"{vm.name}: {vm.power_state}"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key:<{width}}  {value}")


@host.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Forget host NAME (its VMs are not touched)."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        remote.delete(f"/hosts/{name}")
        click.echo(f"removed host {name}")
        return
    HostRegistry(Settings.load()).remove(name)
    click.echo(f"removed host {name}")
