"""`glasspane demo story`: the whole workflow on the local host, step by step.

Build the example template from its spec (the web application's image packed in), deliver it
as XVA, bzip2-compressed VHD and qcow2 (each verified), provision two VMs from it with
cloud-init, configure both with an Ansible playbook, deploy the containerized web application
in each, and show that each answers over HTTP.  `make demo` then serves the pane, whose tree
shows the host, both VMs and their containers.

A second run reuses what is still valid: the Debian base image (cached by its recipe) and the
template, when its spec and variables are unchanged since the last build.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from glasspane.cli.progress import byte_progress
from glasspane.cli.table import human
from glasspane.containers.sample_image import write_image_tarball
from glasspane.errors import GlasspaneError
from glasspane.settings import Settings

VMS = ("demo-web-1", "demo-web-2")
LABEL = ("app", "demo-web")
APP_TAG = "localhost/demo-web:1"
PORT = 8080
STEPS = 7


class Story:
    def __init__(self, console: Console, workdir: Path, examples: Path) -> None:
        self.console, self.workdir, self.examples = console, workdir, examples
        self.settings = Settings.load()
        self.number = 0
        self.began = time.monotonic()

    def step(self, title: str) -> None:
        self.number += 1
        elapsed = int(time.monotonic() - self.began)
        self.console.rule(f"[bold]step {self.number}/{STEPS}[/] {title} "
                          f"[dim]({elapsed // 60}:{elapsed % 60:02d} elapsed)[/]")

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)


def _echo(console: Console) -> Callable[[str], None]:
    def echo(text: str) -> None:
        console.out(text, end="", highlight=False)
    return echo


def run_story(workdir: Path, examples: Path) -> None:
    console = Console()
    workdir.mkdir(parents=True, exist_ok=True)
    story = Story(console, workdir.absolute(), examples.absolute())
    spec_path = story.examples / "template.yaml"
    story.say(f"[bold]glasspane demo[/]: one template, every target's format, two VMs, "
              f"Ansible, containers, one pane.  Work directory: {story.workdir}")
    manifest = _template(story, spec_path)
    _outputs_table(story, manifest)
    addresses = _provision(story, str(manifest["template"]))
    _configure(story)
    _deploy(story)
    _answer(story, addresses)
    elapsed = int(time.monotonic() - story.began)
    story.say(f"[green bold]done in {elapsed // 60} min {elapsed % 60} s[/]: the pane will "
              "show host local, both VMs and their containers.")


def _template(story: Story, spec_path: Path) -> dict[str, Any]:
    from glasspane.templates.build import build_template
    from glasspane.templates.service import list_templates
    from glasspane.templates.spec import parse_spec
    from glasspane.vms.service import destroy_vm
    story.step("build the template from its spec")
    image = write_image_tarball(story.workdir / "web.tar", APP_TAG,
                                "the demo web application (before configuration)\n",
                                mtime=0)
    spec = parse_spec(spec_path, {"app_image": str(image)})
    out = story.workdir / f"output-{spec.name}"
    # The previous run's VMs use the template: they go first (the demo makes them again).
    for name in VMS:
        with suppress(GlasspaneError):
            destroy_vm(story.settings, name)
            story.say(f"removed VM {name} from the previous run")
    previous = _manifest(out)
    have = any(t.name == spec.name for t in list_templates(story.settings))
    if previous and previous.get("spec_sha256") == spec.digest and have:
        story.say(f"template {spec.name} is up to date with {spec_path.name} "
                  f"(built {previous['built_at']}): reused")
        return previous
    story.say(f"building {spec.name} from {spec_path} (the Debian base image is built once "
              "and cached; the build VM boots under TCG in about a minute)")
    with byte_progress(True) as start:
        result = build_template(story.settings, spec, output_dir=out, start=start,
                                echo=_echo(story.console))
    return result.manifest


def _manifest(directory: Path) -> dict[str, Any] | None:
    with suppress(OSError, ValueError):
        document = json.loads((directory / "manifest.json").read_text())
        return document if isinstance(document, dict) else None
    return None


def _outputs_table(story: Story, manifest: dict[str, Any]) -> None:
    story.step("the template in every target's format, each verified")
    table = Table(title=f"{story.workdir}/output-{manifest['template']}")
    for column in ("file", "for", "size", "sha256", "verified"):
        table.add_column(column)
    for output in manifest["outputs"]:
        targets = ", ".join(sorted(output["register"]))
        table.add_row(output["file"], targets, human(output["file_size"]),
                      output["sha256"][:16] + "…", "; ".join(output["verified"]))
    story.console.print(table)


def _provision(story: Story, template: str) -> dict[str, str]:
    from glasspane.vms.service import VmRequest, create_vms
    story.step(f"provision {len(VMS)} VMs from {template} with cloud-init (in parallel)")
    requests = [VmRequest(name, template, cpus=1, memory_mib=640, labels=dict([LABEL]))
                for name in VMS]
    with story.console.status("booting under TCG: SSH, then cloud-init …"):
        results = create_vms(story.settings, requests)
    addresses = {}
    for request, result in zip(requests, results, strict=True):
        if isinstance(result, Exception):
            raise click.ClickException(f"VM {request.name}: {result}")
        addresses[result.name] = result.addresses[0]
        story.say(f"VM {result.name}: {result.addresses[0]}, label {LABEL[0]}={LABEL[1]}")
    return addresses


def _configure(story: Story) -> None:
    from glasspane.vms.configure import configure_vms
    story.step(f"configure them with Ansible (vm configure --label {LABEL[0]}={LABEL[1]})")
    result = configure_vms(story.settings, story.examples / "configure.yml", [],
                           f"{LABEL[0]}={LABEL[1]}",
                           on_output=lambda chunk: story.console.out(
                               chunk.decode(errors="replace"), end="", highlight=False))
    story.say(f"configured {', '.join(result['vms'])}")


def _deploy(story: Story) -> None:
    from glasspane.containers.app import deploy_app
    story.step("deploy the containerized web application in each VM")
    for name in VMS:
        done = deploy_app(story.settings, "local", name, story.examples / "app.yaml")
        story.say(f"VM {name}: " + ", ".join(f"{service} {what}" for service, what in done))


def _answer(story: Story, addresses: dict[str, str]) -> None:
    story.step("each VM's application answers over HTTP")
    for name, address in addresses.items():
        url = f"http://{address}:{PORT}/"
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = response.read().decode(errors="replace").strip()
                break
            except OSError:
                time.sleep(2)
        if name not in body:
            raise click.ClickException(f"VM {name}: {url} did not answer with its page "
                                       f"(got {body!r})")
        story.say(f"{url} -> [green]{body}[/]")
    story.step("the pane")
    story.say("next: `glasspane serve` (make demo starts it, and says where) shows the tree")
