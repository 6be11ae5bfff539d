"""Where a command acts is decided once: `operations(ctx)` picks the local or the remote
implementation, and commands that have no API call (or only exist on a server) say so on
themselves.  With --server, a local-only command refuses rather than act on this machine;
its --help still works; and no command module knows which implementation it has."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from glasspane.cli import operations as ops
from glasspane.cli.local import LocalOperations
from glasspane.cli.remote_operations import RemoteOperations
from tests.cli.runner import run_cli

CLI = Path(ops.__file__).parent
NOWHERE = "http://127.0.0.1:9"  # nothing listens: a command that reaches for it fails (5)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSPANE_TOKEN", "not-a-real-token")
    monkeypatch.delenv("GLASSPANE_SERVER", raising=False)


@pytest.mark.parametrize(("args", "named"), [
    (("serve",), "`glasspane serve` does not work through --server yet"),
    (("inventory", "--list"), "`glasspane inventory` does not work through --server yet"),
    (("demo", "formats"), "`glasspane demo formats` does not work through --server yet"),
    (("vm", "ssh", "web-1"), "an interactive session needs a terminal to the VM itself"),
])
def test_local_only_commands_refuse_through_a_server(capsys: pytest.CaptureFixture[str],
                                                     args: tuple[str, ...], named: str) -> None:
    r = run_cli(capsys, "--server", NOWHERE, *args)
    assert r.code == 2 and named in r.err, r.err
    assert "run it on the server's machine, or without --server" in r.err or "vm" in args


def test_the_server_is_found_from_the_environment_too(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSPANE_SERVER", NOWHERE)
    r = run_cli(capsys, "inventory", "--list")
    assert r.code == 2 and "does not work through --server yet" in r.err
    r = run_cli(capsys, "vm", "ssh", "web-1", "--", "uptime")  # has an API call: tries it
    assert r.code == 5 and f"cannot reach glasspane at {NOWHERE}" in r.err, r.err


@pytest.mark.parametrize("args", [("serve", "--help"), ("demo", "formats", "--help"),
                                  ("vm", "ssh", "--help"), ("task", "list", "--help")])
def test_help_is_shown_wherever_the_command_acts(capsys: pytest.CaptureFixture[str],
                                                 args: tuple[str, ...]) -> None:
    assert run_cli(capsys, "--server", NOWHERE, *args).code == 0
    r = run_cli(capsys, *args)
    assert r.code == 0 and r.out.startswith("Usage: glasspane"), r.err


@pytest.mark.parametrize("args", [("task", "list"), ("task", "wait", "1"), ("logout",)])
def test_server_only_commands_ask_for_a_server(capsys: pytest.CaptureFixture[str],
                                               args: tuple[str, ...]) -> None:
    r = run_cli(capsys, *args)
    assert r.code == 2 and "tasks live on a glasspane server (add --server URL)" in r.err


def test_both_implementations_have_every_operation() -> None:
    wanted = {name for name in vars(ops.Operations) if not name.startswith("_")}
    assert wanted - {"place"} and wanted <= set(dir(LocalOperations))
    assert wanted <= set(dir(RemoteOperations)) | {"place"}


def test_no_command_module_knows_where_it_acts() -> None:
    """Only operations.py chooses; the commands import neither implementation nor the HTTP
    client (login excepted: it makes the token the client needs)."""
    implementations = {"glasspane.cli.local", "glasspane.cli.remote_operations"}
    for path in CLI.glob("*.py"):
        if path.name in ("operations.py", "local.py", "remote.py", "remote_operations.py"):
            continue
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & implementations, path.name
        if path.name != "tasks.py":
            assert "glasspane.cli.remote" not in imported, path.name


def test_the_catalogue_s_operations_have_no_route_or_method_of_their_own() -> None:
    """An operation of the catalogue is reached through `run` on both sides: no hand-kept
    route for it in the remote tables, but those that say why."""
    import re

    from glasspane.cli import remote_operations as remote
    from glasspane.operations import vms  # noqa: F401  (fills the catalogue)
    from glasspane.operations.catalogue import CATALOGUE
    tables = [value for name, value in vars(remote).items() if name.isupper()
              and isinstance(value, dict)]
    routes = [route for table in tables for route in table.values()]
    assert routes
    own = {"vm.configure": "its command prints the task's id, which `run` does not answer",
           "app.deploy": "locally it reads a spec's directory, through a server a stored "
                         "context"}
    for op in CATALOGUE.values():
        if op.name in own:
            continue
        for route in routes:
            shape = re.sub(r"\\{\w+\\}", "[^/]+", re.escape(route.path))
            assert not (route.method == op.method and re.fullmatch(shape, op.path)), \
                f"{op.name} has its own route {route.method} {route.path}"


def test_an_operation_s_file_fields_are_its_command_s() -> None:
    """A misspelt file field would leave a local path unsent (or a stored name unread)."""
    from glasspane.operations.catalogue import Command, Operation, Result
    from glasspane.operations.images import ImageRef

    def handler(context: object, command: Command) -> Result:
        return Result()
    with pytest.raises(TypeError, match=r"file fields \['image'\] are not fields of ImageRef"):
        Operation("image.nothing", "POST", "/images/{name}/nothing", ImageRef, Result,
                  handler, files=("image",))
