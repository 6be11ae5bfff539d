"""Reading the YAML files users write (app specs, later template specs) so that every mistake
can be reported with its file and line.

Mappings come back as `Located` dicts that remember the line of each key.  Input is treated as
untrusted: size-capped, safe types only, aliases refused (a few lines of nested aliases
expand into billions of nodes), nesting and numbers bounded (PyYAML composes recursively, and
reads `0x` followed by a megabyte of digits, or `1:2:3:...` in base 60, as one huge integer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from glasspane.errors import UsageError

MAX_SPEC_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 40
TOP = "the file"  # `where` of a document's top-level mapping: its keys are named alone


class Located(dict[str, Any]):
    """A mapping that knows the line of each of its keys (1-based) and its own."""

    line: int = 0
    lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError("while reading", None, "aliases (*name) are not "
                                       "accepted: write the value out", mark)
        if self.depth >= MAX_DEPTH:
            raise yaml.MarkedYAMLError("while reading", None, "lists and mappings nested "
                                       f"more than {MAX_DEPTH} deep", mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_number(self, node: yaml.ScalarNode) -> Any:
        if len(node.value) > MAX_NUMBER_CHARS:
            raise yaml.MarkedYAMLError("while reading", None, f"a number of {len(node.value)} "
                                       f"characters (at most {MAX_NUMBER_CHARS}); quote it if "
                                       "it is text", node.start_mark)
        if node.tag.endswith(":int"):
            return self.construct_yaml_int(node)
        return self.construct_yaml_float(node)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        plain = super().construct_mapping(node, deep=True)
        # Keys become strings: specs name things, and `80:` or `yes:` as keys are mistakes
        # that validation then reports by name instead of tripping over a number or a bool.
        located = Located({str(k): v for k, v in plain.items()})
        located.line = node.start_mark.line + 1
        located.lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
        return located


def _construct_located(loader: _Loader, node: yaml.MappingNode) -> Located:
    located: Located = loader.construct_mapping(node)
    return located


# SafeLoader builds mappings as plain dicts (filled after the fact); ours are Located.
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_located)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_number)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_number)


def load_yaml(path: Path) -> Any:
    """The document in `path`; UsageError naming the file and line for what is not YAML."""
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise UsageError(f"{path} is {size} bytes; a spec may be at most "
                             f"{MAX_SPEC_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"{path}{where}: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: a number PyYAML's own conversion refuses; RecursionError: whatever
        # recursion the depth bound does not see (the scanner's own is iterative).
        raise UsageError(f"{path}: not a readable spec ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None


def outside(path: Path, confine: Path | None) -> bool:
    """Whether `path` (a file a spec names) leaves `confine`, the directory a server unpacked
    the spec's context into.  Asked before the file is looked at, so that a spec cannot learn
    whether a file of the server exists (an error "no such file" against "outside")."""
    return confine is not None and not path.resolve().is_relative_to(confine.resolve())


class SpecReader:
    """Checks the values of one file, raising UsageError('FILE line N: PATH: problem')."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str, mapping: Any = None, key: str | None = None
             ) -> UsageError:
        line = 0
        if isinstance(mapping, Located):
            line = mapping.lines.get(key, mapping.line) if key else mapping.line
        at = f" line {line}" if line else ""
        return UsageError(f"{self.path}{at}: {where}: {problem}")

    def mapping(self, value: Any, where: str, allowed: set[str],
                required: frozenset[str] | set[str] = frozenset()
                ) -> Located:
        if not isinstance(value, Located):
            raise self.fail(where, f"expected a mapping, found {_kind(value)}")
        for key in value:
            if key not in allowed:
                raise self.fail(key if where == TOP else f"{where}.{key}",
                                "unknown key (allowed: "
                                f"{', '.join(sorted(allowed))})", value, key)
        for key in sorted(required - set(value)):
            raise self.fail(where, f"missing required key {key!r}", value)
        return value

    def string(self, parent: Located, key: str, where: str) -> str:
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(where, f"expected a string, found {_kind(value)}", parent, key)
        return str(value)

    def strings(self, parent: Located, key: str, where: str) -> list[str]:
        value = parent[key]
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, found {_kind(value)}", parent, key)
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise self.fail(f"{where}[{index}]", f"expected a string, found {_kind(item)}",
                                parent, key)
        return [str(item) for item in value]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", Located: "a mapping", list: "a list", bool: "true/false",
            str: "a string", int: "a number", float: "a number"}.get(type(value),
                                                                    type(value).__name__)
