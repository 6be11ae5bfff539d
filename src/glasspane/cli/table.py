"""Output shared by the commands, whichever side answered: JSON of the typed results, aligned
columns (like `docker ps`, easy to grep and cut), `key  value` facts, human-readable sizes, and
one line per target of a many-target action."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from pydantic import BaseModel


def human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):  # a catalogue operation's result: as the API sends it
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return vars(value) if hasattr(value, "__dict__") else str(value)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_plain))


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Columns padded to their widest cell; the last one is not padded."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(headers))]
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        click.echo("  ".join([*padded, *row[-1:]]).rstrip())


def echo_fields(pairs: Iterable[tuple[str, object]], width: int = 0, gap: str = "  ",
                join: str = " ") -> None:
    """`key  value` lines, keys padded alike; lists joined, empty values shown as `-`."""
    shown = [(key, join.join(map(str, v)) if isinstance(v, list) else v)
             for key, v in pairs]
    width = max([width, *(len(k) for k, _ in shown)])
    for key, value in shown:
        click.echo(f"{key:<{width}}{gap}{value if value not in ('', None) else '-'}")


def echo_result(result: BaseModel, as_json: bool = False, width: int = 0, gap: str = "  ",
                join: str = " ") -> None:
    """A typed result: its JSON, or one aligned `key  value` line per field."""
    if as_json:
        emit_json(result.model_dump(mode="json"))
    else:
        echo_fields([(key.replace("_", " "), value) for key, value in result], width, gap, join)


def echo_each(names: Sequence[str], action: Callable[[str], Any], prefix: str,
              parallel: bool = True, name_errors: bool = True,
              shown: Callable[[Any], str] | None = None, workers: int | None = None) -> None:
    """`action` on every target (at once, bounded, unless not `parallel`); one line each,
    `PREFIXNAME: outcome` (or `shown(outcome)`), failures (raised or returned) on stderr,
    and exit status 5 if any failed."""
    from glasspane.vms.service import MAX_PARALLEL_ACTIONS, on_each
    outcomes = on_each(list(names), action, workers or MAX_PARALLEL_ACTIONS) if parallel \
        else [(n, _tried(action, n)) for n in names]
    for name, outcome in outcomes:
        if isinstance(outcome, Exception):
            click.echo(f"glasspane: error: {f'{prefix}{name}: ' if name_errors else ''}"
                       f"{outcome}", err=True)
        else:
            click.echo(shown(outcome) if shown else f"{prefix}{name}: {outcome}")
    if any(isinstance(o, Exception) for _, o in outcomes):
        raise click.exceptions.Exit(5)


def _tried(action: Callable[[str], Any], name: str) -> Any:
    try:
        return action(name)
    except Exception as exc:  # reported with its target, the others go on
        return exc
