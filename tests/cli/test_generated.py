"""Commands made from the catalogue keep the command line they had (names, arguments, options,
defaults, bounds) and take the rest from the operation's command model: a bound becomes a
range, a bool a flag, a list a repeatable option, a mapping repeatable KEY=VALUE pairs."""

from __future__ import annotations

import click
import pytest

from glasspane.cli.generated import catalogue_command
from glasspane.cli.main import cli
from tests.cli.runner import run_cli


def surface(group: str, name: str) -> tuple[list[str], dict[str, tuple[object, ...]]]:
    """A command's arguments, and each option's flags, type, default and whether it repeats."""
    command = cli.commands[group].commands[name]  # type: ignore[attr-defined]
    arguments = [p.human_readable_name for p in command.params if isinstance(p, click.Argument)]
    context = click.Context(command)
    options = {p.name: (tuple(p.opts + p.secondary_opts), str(p.type), p.get_default(context),
                        p.multiple)
               for p in command.params if isinstance(p, click.Option)}
    return arguments, options


JSON = {"as_json": (("--json",), "BOOL", False, False)}
HOST = {"host": (("--host",), "STRING", "local", False)}
GRACE = {"grace": (("--time", "-t"), "<IntRange 0<=x<=3600>", 10, False)}


@pytest.mark.parametrize(("group", "name", "arguments", "options"), [
    ("vm", "start", ["NAMES"], {**HOST, **JSON}),
    ("vm", "shutdown", ["NAMES"],
     {**HOST, "timeout": (("--timeout",), "<IntRange 1<=x<=3600>", 90, False), **JSON}),
    ("vm", "destroy", ["NAMES"], {**HOST, **JSON}),
    ("vm", "snapshot", ["NAME", "SNAPSHOT"], {**HOST, **JSON}),
    ("vm", "revert", ["NAME", "SNAPSHOT"], {**HOST, **JSON}),
    ("vm", "set", ["NAME"], {**HOST, "cpus": (("--cpus",), "<IntRange 1<=x<=64>", None, False),
                             "memory_mib": (("--memory",), "<IntRange 128<=x<=1048576>", None,
                                            False), **JSON}),
    ("container", "stop", ["VM", "NAMES"], {**HOST, **GRACE, **JSON}),
    ("container", "remove", ["VM", "NAMES"],
     {**HOST, "force": (("--force", "-f"), "BOOL", False, False), **JSON}),
    ("container", "run", ["VM", "IMAGE", "COMMAND"],
     {**HOST, "name": (("--name",), "STRING", None, False),
      "ports": (("--publish", "-p"), "STRING", (), True),
      "env": (("--env", "-e"), "STRING", (), True),
      "volumes": (("--volume", "-v"), "STRING", (), True),
      "restart": (("--restart",), "STRING", None, False),
      "labels": (("--label", "-l"), "KEY=VALUE", (), True), **JSON}),
    ("app", "remove", ["VM", "NAME"], {**HOST, **JSON}),
])
def test_generated_commands_keep_their_command_line(
        group: str, name: str, arguments: list[str],
        options: dict[str, tuple[object, ...]]) -> None:
    assert surface(group, name) == (arguments, options)


def test_a_models_fields_become_typed_options() -> None:
    """`vm create`'s model has one field of each kind; a throwaway group shows what each
    becomes (the real `vm create` reads files and counts names, so stays written out)."""
    scratch = click.Group("scratch")
    catalogue_command(scratch, "vm.create", arguments=("name",))
    made = scratch.commands["create"]
    options = {p.name: p for p in made.params if isinstance(p, click.Option)}
    assert options["template"].required and options["host"].default == "local"
    assert str(options["cpus"].type) == "<IntRange 1<=x<=64>" and options["cpus"].default == 2
    assert options["full"].is_flag and options["full"].default is False
    assert options["ssh_keys"].multiple and options["labels"].multiple
    assert options["timeout"].help == "Seconds to wait for that."  # the field's description
    assert "linked clone" in (made.help or "")                        # the operation's summary


@pytest.mark.parametrize(("args", "named"), [
    (("container", "run", "ct-a", "img", "-l", "novalue"),
     "Invalid value for '--label' / '-l': 'novalue' is not KEY=VALUE"),
    (("container", "run", "ct-a", "img", "-p", "http"), "invalid port 'http'"),
    (("vm", "set", "web-1"), "nothing to change (give --cpus, --memory or both)"),
    (("vm", "set", "web-1", "--cpus", "65"), "65 is not in the range 1<=x<=64"),
    (("vm", "snapshot", "web-1", "Not_A_Name"), "vm.snapshot: invalid vm snapshot 'Not_A_Name'"),
    (("container", "stop", "ct-a", "web", "-t", "-1"), "-1 is not in the range 0<=x<=3600"),
])
def test_bad_values_are_usage_errors_before_anything_is_asked(
        capsys: pytest.CaptureFixture[str], args: tuple[str, ...], named: str) -> None:
    r = run_cli(capsys, *args)
    assert r.code == 2 and named in r.err, r.err
