"""`glasspane host add|list|info|remove`."""

from __future__ import annotations

from pathlib import Path

import click

from glasspane.cli.operations import json_option, operations
from glasspane.cli.table import echo_fields, emit_json
from glasspane.enums import HostState
from glasspane.hosts.registry import DRIVERS


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
    added = operations().run("host.add", name=name, uri=uri, driver=driver, check=not no_check,
                             user=user, password=password, verify_tls=not no_verify_tls,
                             ca_pem=Path(ca_file).read_text(errors="replace") if ca_file else None)
    click.echo(f"added host {added.name}: {added.uri}"
               + ("" if added.state == HostState.UNKNOWN else f" ({added.state})"))


@host.command("list")
@json_option
def list_hosts(as_json: bool) -> None:
    """The registered hosts."""
    records = operations().run("host.list").items
    if as_json:
        emit_json(records)
        return
    width = max(len(r.name) for r in records)
    for r in records:
        click.echo(f"{r.name:<{width}}  {r.driver:<8} "
                   + (f"{r.state:<11} " if r.state else "") + r.uri)


@host.command("info")
@click.argument("name", default="local")
@json_option
def info(name: str, as_json: bool) -> None:
    """CPU, memory, storage, acceleration and VMs of host NAME (default: local)."""
    facts = operations().run("host.info", name=name)
    if as_json:
        emit_json(facts)
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
    echo_fields(lines)


@host.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Forget host NAME (its VMs are not touched)."""
    operations().run("host.remove", name=name)
    click.echo(f"removed host {name}")
