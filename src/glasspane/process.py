"""Every external program glasspane runs is started here, and nowhere else (a test holds every
other module to it): argument lists only, never a shell string; a deadline for each; the
command line logged in copyable form; and its failures mapped to the project's errors once:

- the program is not installed: ProgramMissing, naming it and the package to install;
- it exits non-zero (where the caller wants that judged): CommandFailed, naming the program,
  the status and the last lines of its standard error, with the caller's secrets cut out;
- it is still running at its deadline: it is killed, and CommandTimedOut names it and the
  deadline.

Errors name the program, never the whole command line: that may hold the server's paths.

    run          its output, or the error
    call         its status and output; the status is the caller's to judge
    spawn        a running program whose pipes the caller reads and writes as it runs (a
                 playbook's progress, a command fed from a file, a relay, an agent)
    interactive  a program given this terminal: a person's SSH session, which the person ends
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any

from glasspane.errors import CommandFailed, CommandTimedOut, ProgramMissing

log = logging.getLogger("glasspane.process")

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT
Target = int | IO[Any] | None  # where a standard stream goes: PIPE, DEVNULL, STDOUT or a file

# What to install for each program glasspane runs.
PACKAGES = {
    "ssh": "Debian's openssh-client", "ssh-keygen": "Debian's openssh-client",
    "ssh-agent": "Debian's openssh-client", "ssh-add": "Debian's openssh-client",
    "qemu-img": "Debian's qemu-utils", "qemu-system-x86_64": "Debian's qemu-system-x86",
    "apt-get": "Debian's apt", "apt-cache": "Debian's apt", "dpkg-deb": "Debian's dpkg",
    "mmdebstrap": "Debian's mmdebstrap", "mkfs.ext4": "Debian's e2fsprogs",
    "bwrap": "Debian's bubblewrap", "setpriv": "Debian's util-linux",
    "ansible-playbook": "glasspane's Python dependencies (pip install glasspane)",
}
TAIL_LINES = 3  # of standard error, in an error's message
REDACTED = "[redacted]"


def require(program: str, package: str | None = None) -> str:
    """`program`'s path; ProgramMissing naming it and what to install when it is not."""
    path = shutil.which(program)
    if path is None:
        raise ProgramMissing(program, _package(program, package))
    return path


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes


def run(args: Sequence[str], what: str, *, timeout: float, input: bytes | None = None,
        env: Mapping[str, str] | None = None, cwd: str | None = None,
        as_user: Mapping[str, Any] | None = None, name: str | None = None,
        secrets: Sequence[str] = (), hint: str | None = None) -> str:
    """Run `args`, return its standard output; CommandFailed saying `what` failed when it
    exits non-zero (`name` is how errors call the program: the first argument's by
    default; `secrets` are never shown)."""
    done = call(args, what, timeout=timeout, input=input, env=env, cwd=cwd, as_user=as_user,
                name=name, secrets=secrets)
    if done.returncode != 0:
        raise failed(name or args[0], what, done.returncode, done.stderr or done.stdout,
                     secrets=secrets, hint=hint)
    return done.stdout.decode(errors="replace")


def call(args: Sequence[str], what: str, *, timeout: float, input: bytes | None = None,
         stdout: Target = PIPE, stderr: Target = PIPE, env: Mapping[str, str] | None = None,
         cwd: str | None = None, as_user: Mapping[str, Any] | None = None,
         name: str | None = None, secrets: Sequence[str] = ()) -> Result:
    """Run `args` to its end and return its status and output, whatever the status;
    ProgramMissing or CommandTimedOut when it is missing or runs past `timeout` s."""
    argv = _argv(args)
    try:
        done = subprocess.run(argv, input=input, stdin=DEVNULL if input is None else None,
                              stdout=stdout, stderr=stderr, env=env, cwd=cwd,
                              timeout=timeout, check=False, **(as_user or {}))
    except subprocess.TimeoutExpired as exc:  # run() has killed it
        raise timed_out(name or argv[0], what, timeout, exc.stderr or b"",
                        secrets=secrets) from exc
    except OSError as exc:
        raise _not_started(argv, what, name, exc) from exc
    return Result(done.returncode, done.stdout or b"", done.stderr or b"")


class Running:
    """A program `spawn` started.  Used as a context manager, it never outlives the block."""

    def __init__(self, process: subprocess.Popen[bytes], name: str, what: str,
                 timeout: float | None) -> None:
        self.process = process
        self.name = name
        self.what = what
        self.timeout = timeout
        self._expired = threading.Event()
        self._timer: threading.Timer | None = None
        if timeout is not None:
            self._timer = threading.Timer(timeout, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        self._expired.set()
        self.process.kill()

    @property
    def stdin(self) -> IO[bytes] | None:
        return self.process.stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        return self.process.stdout

    @property
    def stderr(self) -> IO[bytes] | None:
        return self.process.stderr

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    @property
    def expired(self) -> bool:
        """Whether it was killed at its deadline."""
        return self._expired.is_set()

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float) -> int | None:
        """Its status once it ends within `timeout` s, else None (it goes on running)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def finish(self, output: bytes | str = b"", *, secrets: Sequence[str] = ()) -> int:
        """Wait for its end and return its status; CommandTimedOut (with the end of `output`,
        what the caller read of it) when its deadline killed it."""
        status = self.process.wait()
        self._cancel()
        if self.expired:
            assert self.timeout is not None
            raise timed_out(self.name, self.what, self.timeout, output, secrets=secrets)
        return status

    def stop(self, grace: float = 0) -> None:
        """End it: asked to (SIGTERM) and given `grace` s, then killed; idempotent."""
        self._cancel()
        if self.process.poll() is None:
            if grace > 0:
                self.process.terminate()
                if self.wait(grace) is not None:
                    return
            self.process.kill()
            self.process.wait()

    def close(self, grace: float = 0) -> None:
        """Close the pipes that are ours, then stop it."""
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        self.stop(grace)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def __enter__(self) -> Running:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def spawn(args: Sequence[str], what: str, *, timeout: float | None, stdin: Target = DEVNULL,
          stdout: Target = PIPE, stderr: Target = PIPE, env: Mapping[str, str] | None = None,
          cwd: str | None = None, as_user: Mapping[str, Any] | None = None,
          name: str | None = None) -> Running:
    """Start `args` with its streams as given; killed at `timeout` s (`finish` then raises
    CommandTimedOut).  timeout=None only for a program whose life a caller's block bounds
    (an agent for one run, a relay whose reads and writes have their own timeouts)."""
    argv = _argv(args)
    try:
        process = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                                   cwd=cwd, **(as_user or {}))
    except OSError as exc:
        raise _not_started(argv, what, name, exc) from exc
    return Running(process, _short(name or argv[0]), what, timeout)


def interactive(args: Sequence[str], what: str) -> int:
    """Run `args` on this terminal (a person's SSH session) and return its status.  No
    deadline: the person at the terminal ends it."""
    argv = _argv(args)
    try:
        return subprocess.call(argv)
    except OSError as exc:
        raise _not_started(argv, what, None, exc) from exc


def failed(program: str, what: str, status: int, output: bytes | str, *,
           secrets: Sequence[str] = (), hint: str | None = None) -> CommandFailed:
    """The error for `program` having exited with `status`: its name, the status and the
    last lines of `output` (its standard error), without `secrets`."""
    return CommandFailed(what, command=_short(program), status=status,
                         output=_scrubbed(output, secrets), hint=hint)


def timed_out(program: str, what: str, timeout: float, output: bytes | str = b"", *,
              secrets: Sequence[str] = ()) -> CommandTimedOut:
    return CommandTimedOut(what, command=_short(program), timeout=timeout,
                           output=_scrubbed(output, secrets))


def _argv(args: Sequence[str]) -> list[str]:
    if isinstance(args, str):  # a shell string: every word of it would be one argument
        raise TypeError("programs are run from argument lists, never from strings")
    argv = [str(a) for a in args]
    # The program and the number of its arguments only: arguments may carry what a user sent
    # (a `vm exec` command line, a password on an ssh-add prompt), and logs are kept.
    log.info("running %s with %d arguments", _short(argv[0]), len(argv) - 1)
    return argv


def _not_started(argv: list[str], what: str, name: str | None, exc: OSError
                 ) -> CommandFailed:
    program = _short(argv[0])
    if isinstance(exc, FileNotFoundError) and exc.filename == argv[0]:
        return ProgramMissing(program, _package(program, None))
    return CommandFailed(f"{what}: cannot start it ({exc.strerror})",
                         command=_short(name or argv[0]))


def _package(program: str, package: str | None) -> str:
    if package is not None:
        return package if " " in package else f"Debian's {package}"
    return PACKAGES.get(_short(program), f"the package that provides {_short(program)}")


def _short(program: str) -> str:
    """A program's name without its directory: errors never carry the server's paths."""
    return os.path.basename(program) or program


def _scrubbed(output: bytes | str, secrets: Sequence[str]) -> str:
    text = output.decode(errors="replace") if isinstance(output, bytes) else output
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return "\n".join(text.strip().splitlines()[-TAIL_LINES:])
