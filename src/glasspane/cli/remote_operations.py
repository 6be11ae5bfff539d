"""The operations through a glasspane server's API.  Each noun's calls are one table of
routes (method, path, body, whether it answers with a task): the methods below only say which
route and with what, then shape the answer into the same results the local side returns."""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from glasspane.api.results import SpecCheck
from glasspane.cli import operations as ops
from glasspane.cli.console_attach import Link, SocketLink
from glasspane.cli.remote import Remote
from glasspane.containers.service import ContainerRow, Listing, VmFailure
from glasspane.enums import ConsoleKind
from glasspane.errors import GlasspaneError, UsageError
from glasspane.inventory.store import StoredImage
from glasspane.operations.catalogue import Operation
from glasspane.operations.vms import ExecResult
from glasspane.templates.service import TemplateInfo
from glasspane.templates.spec import TemplateSpec


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {placeholders} are filled from the call's arguments, each quoted
    body: tuple[str, ...] = ()  # arguments sent as the JSON body ("wire:argument" renames)
    # (A GET's other arguments are its query; other methods' are ignored.)
    task: bool = False  # answered with a task, followed to its end: its result is the answer


VMS = {
    "list": Route("GET", "/vms"),
    "get": Route("GET", "/vms/{host}/{name}"),
    "facts": Route("GET", "/vms/{host}/{name}/facts"),
    "console": Route("GET", "/vms/{host}/{name}/console"),
    "configure": Route("POST", "/vms/configure", ("vms", "label", "playbook",
                                                  "playbook_name", "extra_vars"), task=True),
}
CONTAINERS = {
    "list": Route("GET", "/containers"),
    "logs": Route("GET", "/containers/{host}/{vm}/{name}/logs"),
    "images": Route("GET", "/vms/{host}/{vm}/images"),
}
TEMPLATES = {
    "list": Route("GET", "/templates"),
    "validate": Route("POST", "/templates/validate", ("context", "spec", "variables")),
}
IMAGES = {
    "list": Route("GET", "/images"),
    "get": Route("GET", "/images/{name}"),
}
APPS = {
    "list": Route("GET", "/apps"),
    "deploy": Route("POST", "/vms/{host}/{vm}/apps", ("context", "spec"), task=True),
    "validate": Route("POST", "/apps/validate", ("context", "spec")),
}
class RemoteOperations:
    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.place = f" on {remote.server}"

    @classmethod
    def connect(cls, server: str) -> RemoteOperations:
        return cls(Remote.connect(server))

    def submit(self, route: Route, /, **args: Any) -> Any:
        """Call `route`: its path's fields, body and query from `args`; the answer."""
        fields = {f for _, f, _, _ in string.Formatter().parse(route.path) if f}
        path = route.path.format(**{f: quote(str(args[f]), safe="") for f in fields})
        wire = {key: name or key for key, _, name in (b.partition(":") for b in route.body)}
        query = {k: v for k, v in args.items() if route.method == "GET" and k not in fields
                 and v is not None}  # a GET's other arguments; others' are in the body
        return self.remote.call(route.method, path, params=query or None,
                                json={k: args[a] for k, a in wire.items()} if wire else None)

    def run(self, name: str, quiet: bool = True, /, **fields: Any) -> Any:
        # Checked here first: a bad value is the CLI's usage error, not a round trip.  A file
        # field's local file is sent to the server's store for the command (`@NAME`: one
        # already there), its output fetched from there to where the user asked.
        # A field given as a function (a prompt for a password) is asked now, once.
        fields = {k: v() if callable(v) else v for k, v in fields.items()}
        op, _ = ops.command_for(name, fields)
        with ExitStack() as stack:
            for field in op.files:
                if fields.get(field) is not None:
                    fields[field] = stack.enter_context(
                        self.remote.stored_input(str(fields[field]), quiet))
            if op.output is None or fields.get(op.output) is None:
                return self._call(op, fields, quiet)
            output = op.output

            def make(stored: str) -> tuple[Any, list[str]]:
                result = self._call(op, {**fields, output: stored}, quiet)
                return result, result.written() or [stored]
            shown: dict[str, str] = {}
            result = self.remote.fetch_output(str(fields[output]), make,
                                              bool(fields.get("replace")), quiet, shown)
            return op.result.model_validate(_renamed(result.model_dump(), shown))

    def _call(self, op: Operation[Any, Any], fields: dict[str, Any], quiet: bool) -> Any:
        command = op.parse(fields)
        outside = set(op.path_params + op.query)
        sent = command.model_dump(mode="json", by_alias=True, exclude=outside)
        query = {k: v for k, v in command.model_dump(mode="json", include=set(op.query)).items()
                 if v is not None}
        path = op.path.format(**{f: quote(str(getattr(command, f)), safe="")
                                 for f in op.path_params})
        answer = self.remote.call(op.method, path, params=query or None, json=sent or None)
        if op.task:
            answer = self.remote.wait(answer, quiet).get("result") or {}
        return op.result.model_validate(answer)

    def do(self, route: Route, quiet: bool = True, /, **args: Any) -> Any:
        """Call `route`, following a task to its end: the answer, or the task's result."""
        answer = self.submit(route, **args)
        return self.remote.wait(answer, quiet).get("result") or {} if route.task else answer

    def task(self, route: Route, quiet: bool, /, **args: Any) -> dict[str, Any]:
        return self.remote.wait(self.submit(route, **args), quiet)

    def vm_list(self, host: str) -> list[ops.VmRow]:
        return [ops.VmRow(**_fields(ops.VmRow, v))
                for v in self.do(VMS["list"], host=host, limit=1000)["items"]]

    def vm_info(self, name: str, host: str) -> ops.VmInfo:
        found = self.do(VMS["get"], host=host, name=name)
        facts = self.do(VMS["facts"], host=host, name=name)
        try:
            console = self.do(VMS["console"], host=host, name=name, lines=20)
        except GlasspaneError as exc:  # a VM glasspane did not make keeps no console log
            console = f"({exc})"
        return ops.VmInfo(**_fields(ops.VmInfo, facts), template=found["template"],
                          labels=[f"{k}={v}" for k, v in found["labels"].items()],
                          containers=[c["name"] for c in found["containers"]],
                          console_log=console)

    def vm_console(self, name: str, host: str, lines: int) -> str:
        return str(self.do(VMS["console"], host=host, name=name, lines=lines))

    def vm_console_link(self, name: str, host: str) -> Link:
        from glasspane.operations import consoles  # registers console.ticket
        issued = self.run(consoles.console_ticket.name, host=host, name=name,
                          kind=ConsoleKind.SERIAL)
        return SocketLink(self.remote.websocket(
            f"{issued.url}?ticket={quote(issued.ticket, safe='')}"))

    def vm_ssh(self, name: str, host: str, command: list[str], user: str,
               identity: str | None) -> ExecResult:
        """Through the server, as glasspane's user there (`user` and `identity` are this
        machine's: not used)."""
        done: ExecResult = self.run("vm.exec", host=host, name=name, command=command)
        return done

    def vm_configure(self, vms: list[str], label: str | None, playbook: Path,
                     extra_vars: dict[str, str], quiet: bool) -> ops.Configured:
        done = self.task(VMS["configure"], False, vms=vms, label=label,
                         playbook=playbook.read_text(), playbook_name=playbook.name,
                         extra_vars=extra_vars)
        return ops.Configured(done["result"]["vms"], done["result"]["recap"],
                              f" (task {done['id']})")

    def vm_export(self, name: str, host: str, file: str, to: str | None, disk: int,
                  force: bool, quiet: bool) -> ops.Exported:
        def make(stored: str) -> tuple[Any, list[str]]:
            return self.run("vm.export", quiet, host=host, name=name, output=stored,
                            format=to, disk=disk, replace=force), [stored]
        found = self.remote.fetch_output(file, make, force, quiet)
        return ops.Exported(found.format, found.size, found.sha256)

    def container_list(self, vm: str | None, host: str | None, all_: bool,
                       timeout: float) -> Listing:
        """The server's inventory of containers (kept current by its sync); VMs whose engine
        the server could not ask are the failures."""
        items = self.do(CONTAINERS["list"], host=host, vm=vm, limit=1000)["items"]
        rows = [ContainerRow(**_fields(ContainerRow, c)) for c in items
                if all_ or c["state"] == "running"]
        found = self.do(VMS["list"], host=host, q=vm, limit=1000)["items"]
        return Listing(rows, [VmFailure(v["host"], v["name"], v["containers_error"])
                              for v in found if v["containers_error"]
                              and (vm is None or v["name"] == vm)])

    def container_logs(self, host: str, vm: str, name: str, follow: bool,
                       tail: int | None) -> Iterator[tuple[str, bytes]]:
        if follow:
            raise UsageError("--follow does not work through --server yet")
        text = self.do(CONTAINERS["logs"], host=host, vm=vm, name=name, tail=tail or 200)
        return iter([("stdout", str(text).encode())])

    def container_images(self, host: str, vm: str) -> list[dict[str, Any]]:
        return list(self.do(CONTAINERS["images"], host=host, vm=vm))


    def template_list(self, host: str) -> list[TemplateInfo]:
        return [_template(t) for t in self.do(TEMPLATES["list"], host=host, limit=1000)["items"]]

    def _context(self, spec: TemplateSpec, quiet: bool) -> Any:
        return self.remote.sent_context(spec.path, spec.files(), f"{spec.name}.context.tar",
                                        quiet)

    def template_validate(self, spec: TemplateSpec, variables: dict[str, str]
                          ) -> SpecCheck:
        with self._context(spec, True) as context:
            return SpecCheck.model_validate(self.do(TEMPLATES["validate"], context=context,
                                                    spec=spec.path.name, variables=variables))

    def template_build(self, spec: TemplateSpec, variables: dict[str, str], only: list[str],
                       output_dir: Path | None, host: str, register: bool,
                       quiet: bool) -> ops.Built:
        if output_dir is not None:
            raise UsageError("--output-dir is local; with --server the outputs go to the "
                             "server's image store")
        with self._context(spec, quiet) as context:
            done = self.run("template.build", quiet, context=context, spec=spec.path.name,
                            variables=variables, only=only, host=host,
                            register_template=register)
        return ops.Built(done.template, done.build_seconds,
                         f"stored in the image store{self.place}", done.stored,
                         host if done.registered else None)

    def image_info(self, file: str, fmt: str | None, quiet: bool) -> dict[str, Any]:
        with self.remote.stored_input(file, quiet) as name:
            stored = self.do(IMAGES["get"], name=name, **{"from": fmt})
        if "info" not in stored:
            raise UsageError(f"{file} is a {stored['kind']}, not a disk image or VM archive")
        return {"path": file, **stored["info"]}

    def image_list(self) -> list[StoredImage]:
        return [StoredImage(**_fields(StoredImage, i)) for i in self.do(IMAGES["list"])]

    def image_put(self, file: Path, name: str, replace: bool, quiet: bool) -> StoredImage:
        return StoredImage(**_fields(StoredImage, self.remote.put_file(file, name, replace,
                                                                       quiet)))

    def image_get(self, name: str, dest: Path, force: bool, quiet: bool) -> str:
        expected = str(self.do(IMAGES["get"], name=name)["sha256"])
        self.remote.get_file(name, dest, force, quiet)
        return expected

    def _app_context(self, spec: Path) -> Any:
        from glasspane.containers.app import parse_app
        parsed = parse_app(spec)  # mistakes are found here, before anything is sent
        return self.remote.sent_context(spec, [s.archive for s in parsed.services if s.archive],
                                        f"{parsed.name}.app-context.tar")

    def app_deploy(self, host: str, vm: str, spec: Path) -> list[tuple[str, str]]:
        with self._app_context(spec) as context:
            found = self.task(APPS["deploy"], False, host=host, vm=vm, context=context,
                              spec=spec.name)["result"]
        return [(s["service"], s["action"]) for s in found["services"]]

    def app_validate(self, spec: Path) -> list[str]:
        with self._app_context(spec) as context:
            names: list[str] = self.do(APPS["validate"], context=context,
                                       spec=spec.name)["services"]
        return names

    def app_list(self, vm: str | None, host: str | None) -> ops.AppListing:
        return ops.AppListing([ops.AppRow(a["host"], a["vm"], a["name"],
                                          [f"{c['name']} {c['state']}" for c in a["containers"]])
                               for a in self.do(APPS["list"], host=host, vm=vm)])

    def task_wait(self, task_id: int) -> str:
        shown = self.run("task.show", task_id=task_id).model_dump(mode="json")
        return str(self.remote.wait(shown)["state"])



def _renamed(value: Any, names: dict[str, str]) -> Any:
    """`value` (a result's JSON) with the stored images it names as the user named them."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {k: _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    return value


def _fields(cls: type, found: dict[str, Any]) -> dict[str, Any]:
    """The answer's values for the fields of `cls` (a server may say more)."""
    return {f.name: found[f.name] for f in dataclasses.fields(cls) if f.name in found}


def _template(found: dict[str, Any]) -> TemplateInfo:
    return TemplateInfo(found["name"], found["host"], found.get("path", ""),
                        found["virtual_size"], found["allocation"], found.get("format", ""))
