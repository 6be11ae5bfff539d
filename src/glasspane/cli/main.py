"""Entry point: builds the command tree and turns the project's exception tree into one-line
errors and exit codes (the traceback only under --debug)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from glasspane import __version__
from glasspane.allocator import tune_allocator
from glasspane.cli.app import app
from glasspane.cli.container import container
from glasspane.cli.host import host
from glasspane.cli.image import image
from glasspane.cli.inventory import inventory
from glasspane.cli.operations import local_only
from glasspane.cli.serve import serve
from glasspane.cli.tasks import login, logout, task
from glasspane.cli.template import template
from glasspane.cli.user import user
from glasspane.cli.vm import vm
from glasspane.cli.vm_hardware import register as register_vm_hardware
from glasspane.errors import GlasspaneError

INTERNAL_ERROR = 70


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glasspane")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--server", envvar="GLASSPANE_SERVER", metavar="URL",
              help="Act through this glasspane server's API instead of locally "
                   "(token: GLASSPANE_TOKEN or `glasspane --server URL login USER`).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, server: str | None) -> None:
    """glasspane: build VM templates once, deliver them to every hypervisor, and manage hosts,
    VMs and their containers from one place."""
    ctx.obj = {"server": server}


cli.add_command(image)
cli.add_command(host)
cli.add_command(template)
cli.add_command(vm)
register_vm_hardware(vm)
cli.add_command(container)
cli.add_command(app)
cli.add_command(serve)
cli.add_command(user)
cli.add_command(task)
cli.add_command(login)
cli.add_command(logout)
cli.add_command(inventory)


@cli.group()
def demo() -> None:
    """Demonstrations: the whole workflow (`story`, what `make demo` runs) or the image
    toolkit alone (`formats`)."""


@demo.command("formats")
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default=None,
              help="Where to put the demo files (default: a new temporary directory).")
@click.option("--size", "size_mib", type=click.IntRange(16, 65536), default=256,
              show_default=True, help="Size of the sample disk in MiB.")
@local_only()
def demo_formats(workdir: str | None, size_mib: int) -> None:
    """Convert a generated sample disk through every format and verify each result."""
    from glasspane.cli.demo import run_demo
    run_demo(workdir, size_mib)


@demo.command("story")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-work"), show_default=True,
              help="Where the build's outputs and the demo's files go.")
@click.option("--examples", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path("examples/web-template"), show_default=True,
              help="The template spec, playbook and app the story uses.")
@local_only()
def demo_story(workdir: Path, examples: Path) -> None:
    """Build the example template, export it for every target, provision two VMs, configure
    them with Ansible, deploy the web application in each and check it answers."""
    from glasspane.cli.story import run_story
    run_story(workdir, examples)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    tune_allocator()
    try:
        code = cli.main(args=args, prog_name="glasspane", standalone_mode=False)
    except GlasspaneError as exc:
        if debug:
            import traceback
            traceback.print_exc()
        click.echo(f"glasspane: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("glasspane: interrupted; partial outputs were removed", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            import traceback
            traceback.print_exc()
        click.echo(f"glasspane: internal error: {type(exc).__name__}: {exc} "
                   "(run again with --debug for the traceback and report it)", err=True)
        sys.exit(INTERNAL_ERROR)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
