"""Template operations: import a disk image as a template, make the Debian one, build one
from a spec's stored directory (on a server), remove one.
An imported image (and its kernel and initrd) is a stored image on a server and the user's
own file when the CLI runs it here (`operations.files`)."""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from typing import Any

from pydantic import Field
from sqlalchemy import select

from glasspane.errors import NotFound
from glasspane.operations.catalogue import Admission, Command, Context, Result, operation
from glasspane.operations.files import actor_of, bytes_of, files_of, store_of
from glasspane.operations.images import stored_name
from glasspane.operations.vms import refreshed

TEMPLATE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def host_field() -> Any:
    return Field(default="local", min_length=1, max_length=64)


def known_host(admission: Admission, host: str) -> int:
    """The host's row id; NotFound (a 404 now, not a failed task later) if none."""
    from glasspane.inventory.models import Host
    with admission.database.session() as session:
        found: int | None = session.scalar(select(Host.id).where(Host.name == host))
    if found is None:
        raise NotFound(f"no host named {host!r}")
    return found


class TemplateResult(Result):
    name: str
    host: str
    path: str
    virtual_size: int
    allocation: int
    format: str
    builtin: bool = False


class ImportTemplate(Command):
    name: str = Field(pattern=TEMPLATE_NAME)
    host: str = host_field()
    image: str = stored_name("a stored disk image")
    disk: int | None = Field(default=None, ge=0, le=255, description="one disk of an XVA/OVA")
    kernel: str | None = Field(default=None, max_length=128, description="a stored kernel")
    initrd: str | None = Field(default=None, max_length=128, description="a stored initrd")


def admit_import(admission: Admission, command: ImportTemplate) -> None:
    known_host(admission, command.host)
    for name in filter(None, (command.image, command.kernel, command.initrd)):
        store_of(admission.settings).path(name)


@operation("template.import", "POST", "/templates", ImportTemplate, TemplateResult, task=True,
           pinned=True, object_type="template", target_name="{host}/{name}",
           admit=admit_import, files=("image", "kernel", "initrd"), bytes=True)
def import_(context: Context, command: ImportTemplate) -> TemplateResult:
    """Store a stored disk image (any format) as a template on a host (a task)."""
    from glasspane.templates.service import import_template
    files = files_of(context)
    with files.confined():
        boot = {key: str(files.path(value)) if value else None
                for key, value in (("kernel", command.kernel), ("initrd", command.initrd))}
        with refreshed(context, command.host):
            info = import_template(context.settings, command.name,
                                   str(files.path(command.image)), command.host, command.disk,
                                   bytes_of(context), **boot, references=files.references())
        return TemplateResult.model_validate(files.confine(dataclasses.asdict(info)))


class FromDebian(Command):
    name: str = Field(pattern=TEMPLATE_NAME)
    host: str = host_field()
    suite: str = Field(default="bookworm", pattern=r"^[a-z]{2,32}$")


@operation("template.from-debian", "POST", "/templates/from-debian", FromDebian,
           TemplateResult, task=True, object_type="template", target_name="{host}/{name}",
           admit=lambda admission, command: known_host(admission, command.host), bytes=True)
def from_debian(context: Context, command: FromDebian) -> TemplateResult:
    """Build (or reuse from the server's cache) the Debian image and store it (a task)."""
    from glasspane.templates.service import template_from_debian
    files = files_of(context)
    context.progress(1, f"building or reusing the Debian {command.suite} image")
    with files.confined(), refreshed(context, command.host):
        info = template_from_debian(context.settings, command.name, command.host,
                                    command.suite, bytes_of(context))
    return TemplateResult.model_validate(files.confine(dataclasses.asdict(info)))


class TemplateRef(Command):
    host: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)


class TemplateRemoved(Result):
    removed: str


def admit_remove(admission: Admission, command: TemplateRef) -> None:
    from glasspane.inventory.models import Template
    host = known_host(admission, command.host)
    with admission.database.session() as session:
        if session.scalar(select(Template.id).where(Template.host_id == host,
                                                    Template.name == command.name)) is None:
            raise NotFound(f"no template named {command.name!r} on host {command.host}")


@operation("template.remove", "DELETE", "/templates/{host}/{name}", TemplateRef,
           TemplateRemoved, task=True, object_type="template", target_name="{host}/{name}",
           admit=admit_remove)
def remove(context: Context, command: TemplateRef) -> TemplateRemoved:
    """Delete the template (a task; refused while VMs use it)."""
    from glasspane.templates.service import remove_template
    with refreshed(context, command.host):
        remove_template(context.settings, command.name, command.host)
    return TemplateRemoved(removed=command.name)


class BuildTemplate(Command):
    context: str = stored_name("a stored tar archive of the spec's directory")
    spec: str = Field(default="template.yaml", min_length=1, max_length=255,
                      description="the spec's path inside the context")
    variables: dict[str, str] = Field(default_factory=dict, max_length=256)
    only: list[str] = Field(default_factory=list, max_length=16)
    host: str = host_field()
    register_template: bool = Field(default=True, description="store the template for "
                                                               "`vm create` on the host")


class Built(Result):
    template: str
    registered: bool
    stored: list[str]
    build_seconds: float
    log_tail: str


def admit_build(admission: Admission, command: BuildTemplate) -> None:
    known_host(admission, command.host)
    store_of(admission.settings).path(command.context)


@operation("template.build", "POST", "/templates/build", BuildTemplate, Built, task=True,
           pinned=True, object_type="template", target_name="{host}/{context}",
           admit=admit_build)
def build(context: Context, command: BuildTemplate) -> Built:
    """Build a template from the spec in a stored build context (a task; its log is in the
    task's messages, the outputs and manifest go to the image store).

    On the server only: here, `template build` reads the spec's own directory and leaves the
    outputs in one beside it."""
    from glasspane.inventory.store_handlers import build_in_store
    files = files_of(context)
    registering = refreshed(context, command.host) if command.register_template \
        else nullcontext()
    with files.confined(), registering:
        return Built.model_validate(files.confine(build_in_store(
            context.task, command.model_dump(), actor_of(context))))
