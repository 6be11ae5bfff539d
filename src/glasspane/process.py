"""Every external program glasspane runs goes through `run`: argument lists only (never a
shell string built from input), the command line logged in copyable form, and a failure
reported as CommandFailed naming the command and the end of its output."""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from glasspane.errors import CommandFailed

log = logging.getLogger("glasspane.process")


def require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise CommandFailed(f"{program} is not installed", command=program,
                            hint=f"install Debian's {package} (make test does)")
    return path


def run(args: Sequence[str], what: str, *, timeout: float | None = None) -> str:
    """Run `args`, return its standard output; raise CommandFailed saying `what` failed."""
    command = shlex.join(args)
    log.info("running %s", command)
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"{what} timed out after {timeout} s", command=command) from exc
    except OSError as exc:
        raise CommandFailed(f"{what}: {exc.strerror}", command=command) from exc
    if done.returncode != 0:
        raise CommandFailed(what, command=command, output=done.stderr or done.stdout)
    return done.stdout


@contextmanager
def deadline(process: subprocess.Popen[Any], timeout: float) -> Iterator[threading.Event]:
    """Kill `process` if it runs past `timeout` seconds (the event yielded says it did), and
    on leaving the block, whatever happened, if it still runs: no process outlives its
    caller."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        process.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
