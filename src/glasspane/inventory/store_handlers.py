"""What the server's operations on its image store share (the operations themselves are in
`glasspane.operations`): byte progress from the image toolkit as a task's 0-100, each phase
taking half of what is left so the bar never goes back; a stored build context unpacked and
its spec confined to it; a template built from one into the store.

Every image is opened with the store's references policy (a backing file or parent only as
another stored image's bare name), and every result and error names stored images by name,
never by their path on the server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glasspane.errors import GlasspaneError, UsageError
from glasspane.images.base import ProgressFn
from glasspane.images.convert import StartFn
from glasspane.inventory.handlers import current_settings
from glasspane.inventory.store import Actor, ImageStore
from glasspane.inventory.tasks import TaskContext

if TYPE_CHECKING:
    from glasspane.templates.spec import TemplateSpec


def byte_progress(context: TaskContext) -> StartFn:
    """A `start(total, label)` for the image toolkit reporting into the task."""
    window = {"floor": 0.0}

    def start(total: int, label: str) -> ProgressFn:
        floor = window["floor"]
        span = (95 - floor) / 2
        window["floor"] = floor + span
        done = {"n": 0}

        def advance(n: int) -> None:
            done["n"] += n
            fraction = done["n"] / total if total else 1.0
            context.progress(int(floor + span * min(fraction, 1.0)),
                             f"{label}: {done['n'] >> 20} of {total >> 20} MiB")
            context.check()
        return advance
    return start


def _store() -> ImageStore:
    settings = current_settings()
    return ImageStore(settings.data_dir, settings.store_reserve)


@contextmanager
def open_context(store: ImageStore, context: str, spec: str) -> Iterator[tuple[Path, Path]]:
    """The stored build context `context` unpacked into a staging directory: the path of
    its spec `spec` (which must be inside it) and the staging directory, for outputs."""
    from glasspane.build_context import unpack_context
    settings = current_settings()
    with store.staging() as work:
        root = (work / "context").resolve()
        try:
            # The store's free-space rule holds for unpacking too: a viewer's validation
            # unpacks, and would otherwise fill the disk the store keeps room on.
            unpack_context(store.path(context), root, settings.context_limit,
                           settings.context_members, room=store.check_room)
            spec_path = (root / spec).resolve()
            if not spec_path.is_relative_to(root) or not spec_path.is_file():
                raise UsageError(f"context {context} has no spec {spec!r}",
                                 hint="name the spec's path inside the context")
            yield spec_path, work
        except GlasspaneError as exc:
            # Errors go to every user (a validation's answer, a task's error): the context's
            # files by their names in it, as the caller knows them, not by where this server
            # unpacked them.
            _rename_paths(exc, [(f"{root}/", f"{context}:"), (str(root), context),
                                (str(work.resolve()), "staging"), (str(work), "staging"),
                                (str(store.root.resolve()), "store"),
                                (str(store.root), "store")])
            raise


def _rename_paths(exc: GlasspaneError, renames: list[tuple[str, str]]) -> None:
    def renamed(value: str) -> str:
        for old, new in renames:
            value = value.replace(old, new)
        return value
    for attribute in ("message", "detail", "hint", "path", "log"):
        value = getattr(exc, attribute, None)
        if isinstance(value, str):
            setattr(exc, attribute, renamed(value))
    exc.args = tuple(renamed(a) if isinstance(a, str) else a for a in exc.args)


@contextmanager
def template_in_context(store: ImageStore, context: str, spec: str,
                        variables: dict[str, str]) -> Iterator[tuple[TemplateSpec, Path]]:
    """The template spec of a stored context, parsed and confined to it; a staging
    directory for the build's outputs."""
    from glasspane.templates.spec import parse_spec
    with open_context(store, context, spec) as (spec_path, work):
        # Confined as it is parsed: on the server a path outside would be the server's own
        # file (a key, a password database), not one the caller sent.
        yield parse_spec(spec_path, variables, confine=work / "context"), work


@contextmanager
def app_in_context(store: ImageStore, context: str, spec: str) -> Iterator[Path]:
    """The path of the app spec of a stored context, checked and confined to it."""
    from glasspane.containers.app import parse_app
    with open_context(store, context, spec) as (spec_path, work):
        parse_app(spec_path, confine=work / "context")
        yield spec_path


def build_in_store(context: TaskContext, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """Unpack the context, build, and put the outputs and the manifest into the store as
    NAME.FORMAT and NAME.manifest.json (replacing an earlier build's); the build log is the
    task's messages and, the last 64 KiB of it, the result's or error's tail (operation
    template.build)."""
    from glasspane.images.references import STANDALONE
    from glasspane.templates.build import build_template
    from glasspane.templates.spec import select_outputs
    store, settings = _store(), current_settings()
    context.progress(1, f"unpacking build context {p['context']}")
    with template_in_context(store, p["context"], p["spec"], p["variables"]) as (spec, work):
        select_outputs(spec, p["only"])

        percent = {"now": 0}

        def report(now: int, message: str) -> None:
            percent["now"] = now
            context.progress(now, message)

        def echo(text: str) -> None:  # the build's output: its last line as the message
            lines = text.strip().splitlines()
            if lines:
                context.progress(percent["now"], lines[-1][:200])

        result = build_template(settings, spec, only=tuple(p["only"]),
                                output_dir=work / "output", host=p["host"],
                                register=p["register_template"], start=byte_progress(context),
                                echo=echo, report=report,
                                # The spec's source image comes from the context: it may
                                # name no other file (the context is no image store).
                                references=STANDALONE)
        manifest_name = f"{spec.name}.manifest.json"
        names = [output["file"] for output in result.manifest["outputs"]] + [manifest_name]
        for name in names:  # all or none: a name another operator holds is refused first
            store.check_new(name, True, actor)
        stored = []
        for output in result.manifest["outputs"]:
            stored.append(store.adopt(result.directory / output["file"], output["file"],
                                      actor, replace=True, sha256=output["sha256"]))
        stored.append(store.adopt(result.directory / "manifest.json", manifest_name,
                                  actor, replace=True))
        log_tail = (result.directory / "build.log").read_text(errors="replace")[-65536:]
    return {"template": spec.name, "registered": result.template is not None,
            "stored": [s.name for s in stored], "build_seconds":
            result.manifest["build_seconds"], "log_tail": log_tail}
