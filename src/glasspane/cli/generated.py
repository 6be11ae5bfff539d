"""Click commands made from the operations catalogue: an operation's command model says the
arguments and options (type, bounds, default, help), its summary the command's help, and one
call, `operations().run(...)`, does it here or through a server.  What a command shows is its
`echo` (one line from the typed result and the command), or `--json` (the result itself).

A positional argument written `field...` takes many values: for a list field they are the
list; for any other field the operation runs once per value (several VMs at once), one line
each, failures on stderr and exit status 5 if any failed.  Not for what a command does
beyond one call per target (reading files, counting names): such commands stay written out."""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any, Union, get_args, get_origin

import annotated_types
import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from glasspane.cli.operations import operation_named, operations
from glasspane.cli.table import echo_each, echo_result

Echo = Callable[[Any, Any], str | None]   # (result, command) -> what is shown (None: shown)


def catalogue_command(group: click.Group, operation: str, *, arguments: Sequence[str] = (),
                      echo: Echo | None = None,
                      options: Mapping[str, Sequence[str]] | None = None,
                      defaults: Mapping[str, Any] | None = None, omit: Sequence[str] = (),
                      check: Callable[[dict[str, Any]], None] | None = None,
                      prefix: str | None = "", parallel: bool = True) -> None:
    """Add operation `operation` to `group`, as the command named by its verb.

    `arguments`: the fields taken as positional arguments, in order (`field...`: many);
    every other field not in `omit` is an option, spelt `--the-field` unless `options`
    gives its flags; `defaults` overrides the model's default for the command line;
    `check` sees the fields before anything is asked (a usage error there stops it);
    `prefix` starts each failure's line with the target (None: the error names it) and
    `parallel` says whether many targets run at once."""
    op = operation_named(operation)
    fields: dict[str, FieldInfo] = op.command.model_fields
    flags, overrides = dict(options or {}), dict(defaults or {})
    params: list[click.Parameter] = []
    many, takes_rest = None, False
    for spec in arguments:
        field = spec.removesuffix("...")
        if spec.endswith("..."):
            if _base(fields[field].annotation) is list:
                takes_rest = True
                params.append(click.Argument([field], nargs=-1, type=click.UNPROCESSED))
            else:
                many = field
                params.append(click.Argument([f"{field}s"], nargs=-1, required=True))
        else:
            params.append(click.Argument([field], type=_click_type(fields[field])))
    positional = {spec.removesuffix("...") for spec in arguments}
    params += [_option(field, info, flags.get(field), overrides)
               for field, info in fields.items() if field not in positional | set(omit)]
    params.append(click.Option(["--json", "as_json"], is_flag=True,
                               help="The typed result, as JSON."))

    def callback(as_json: bool, **given: Any) -> None:
        values = {_field(key, many): _value(fields[_field(key, many)], value)
                  for key, value in given.items()}
        targets: list[str] = values.pop(many) if many else []
        if check is not None:
            check(values)
        ops = operations()

        def one(target: str | None = None) -> Any:
            sent = values if many is None else {**values, many: target}
            result = ops.run(operation, **sent)
            return result if as_json or echo is None else echo(result, op.parse(sent))
        if many is None:
            shown = one()
            if isinstance(shown, BaseModel):
                echo_result(shown, as_json)
            elif shown is not None:
                click.echo(shown)
        else:  # JSON lines: one result each
            echo_each(targets, one, prefix or "", parallel=parallel,
                      name_errors=prefix is not None, shown=lambda done: done if isinstance(
                          done, str) else json.dumps(done.model_dump(mode="json")))

    summary = inspect.cleandoc(op.summary)
    if many:
        summary += (f"\n\nSeveral {many.upper()}S {'at once' if parallel else 'in turn'}, one "
                    "line each; the exit status is 5 if any failed.")
    group.add_command(click.Command(
        op.verb, callback=callback, params=params, help=summary,
        context_settings={"ignore_unknown_options": True} if takes_rest else None))


def _field(key: str, many: str | None) -> str:
    return many if many is not None and key == f"{many}s" else key


def _value(info: FieldInfo, value: Any) -> Any:
    """Click's value as the model takes it: tuples as lists (none given: the model's default
    where it has one), KEY=VALUE pairs as a mapping."""
    if not isinstance(value, tuple):
        return value
    if _base(info.annotation) is dict:
        return dict(value)
    return list(value) or (None if info.default is None else [])


class KeyValue(click.ParamType[tuple[str, str]]):
    """A KEY=VALUE pair of a mapping field, refused by click naming its option."""
    name = "KEY=VALUE"

    def __repr__(self) -> str:
        return self.name

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        if not sep or not key:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key, text


def _option(field: str, info: FieldInfo, flags: Sequence[str] | None,
            defaults: Mapping[str, Any]) -> click.Option:
    base = _base(info.annotation)
    default = defaults.get(field, None if info.default is PydanticUndefined else info.default)
    if field == "host" and default is None:
        default = "local"  # this machine's hypervisor, as everywhere in the CLI
    decls = [*(flags or [f"--{field.replace('_', '-')}"]), field]
    described = info.description or ""
    help_text = f"{described[:1].upper()}{described[1:]}." if described else None
    if base is bool:
        return click.Option(decls, is_flag=True, default=bool(default), help=help_text)
    if base in (list, dict):
        help_text = f"{help_text[:-1]} (repeatable)." if help_text else None
        return click.Option(decls, multiple=True, default=(), help=help_text,
                            type=KeyValue() if base is dict else click.STRING)
    required = info.is_required() and field not in defaults and field != "host"
    return click.Option(decls, type=_click_type(info), default=default, required=required,
                        show_default=default is not None, help=help_text)


def _click_type(info: FieldInfo) -> click.ParamType[Any]:
    base = _base(info.annotation)
    if base is int:
        bounds = {type(m): m for m in info.metadata}
        low, high = bounds.get(annotated_types.Ge), bounds.get(annotated_types.Le)
        return click.IntRange(getattr(low, "ge", None), getattr(high, "le", None))
    if base is float:
        return click.FLOAT
    if isinstance(base, type) and issubclass(base, Enum):
        return click.Choice([str(member.value) for member in base])
    return click.STRING


def _base(annotation: Any) -> Any:
    """The type under an optional one, and a generic's origin: `list[str] | None` -> list."""
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return get_origin(annotation) or annotation

