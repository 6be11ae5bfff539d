"""The project's exception tree.

Every backend failure (a malformed image, a subprocess, libvirt, SSH, a container engine) is
translated once, where it happens, into one of these classes.  The CLI and the API map the tree
to exit codes and HTTP statuses in one place each.

    GlasspaneError
     ├─ UsageError                 the request itself is wrong (unknown format, bad option)
     │   ├─ Conflict               the object's state does not allow it (start a running VM)
     │   │   └─ CapabilityMissing  the host's driver does not do that (no image transfer)
     │   ├─ Forbidden              the caller may not touch this object (another's image, task)
     │   └─ RequestTimeout         a request's body stopped arriving (the server's limit)
     ├─ ImageError                 a disk image or VM archive cannot be used
     │   ├─ FormatError            structure is invalid: names file, structure and offset
     │   │   └─ ChecksumError      content does not match its recorded checksum
     │   ├─ ReferenceRefused       names a file (backing file, parent) it may not read here
     │   ├─ UnsupportedFeature     valid, but uses a feature glasspane does not implement
     │   └─ LimitExceeded          declared sizes beyond what glasspane accepts
     ├─ OutputError                an output cannot be written (exists, ...)
     │   └─ NoSpace                it would fill the disk (beyond the kept reserve)
     ├─ NotFound                   a named host, VM or template does not exist
     ├─ CommandFailed              an external program failed (names the program)
     │   ├─ ProgramMissing         it is not installed: names it and the package to install
     │   └─ CommandTimedOut        it ran past its deadline and was killed: names the deadline
     ├─ BuildFailed                a template build step failed: names the step and its log
     ├─ Busy                       the server is at one of its limits: try again later
     │   └─ RateLimited            too many attempts from one client
     ├─ Unavailable                this machine cannot do it safely (no sandbox for playbooks)
     └─ HostError                  a hypervisor host refused or failed an operation
         ├─ HostUnreachable        the host cannot be reached at all
         ├─ HostRefused            a host to register failed its check: the caller's URI or
         │                         credentials, not this server, are wrong (422)
         └─ GuestError             reaching into a VM failed: names the host and the VM
             ├─ GuestUnreachable   SSH to the VM refused, dropped or timed out
             └─ EngineError        the VM's container engine refused or failed a request
"""

from __future__ import annotations


class GlasspaneError(Exception):
    """Base of every error glasspane raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = message  # without the "host H: VM V:" prefixes subclasses add
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(GlasspaneError):
    """The request is wrong: unknown format, impossible option combination."""

    exit_code = 2


class Conflict(UsageError):
    """The object's current state does not allow the request (start a running VM)."""


class CapabilityMissing(Conflict):
    """The host's hypervisor driver does not have the capability the request needs (image
    transfer on a libvirt host); names the host, the driver kind and the capability."""


class RequestTimeout(UsageError):
    """A request's body stopped arriving for longer than the server waits."""


class Forbidden(UsageError):
    """The caller's role allows the action, but not on this object (an image another
    operator stored, another user's task)."""


class ImageError(GlasspaneError):
    """A disk image or VM archive cannot be used."""

    exit_code = 3

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return where + super().__str__()


class FormatError(ImageError):
    """The file's structure is invalid; carries the structure and the byte offset."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        structure: str | None = None,
        offset: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, path=path, hint=hint)
        self.structure = structure
        self.offset = offset

    def __str__(self) -> str:
        parts = []
        if self.path:
            parts.append(self.path)
        if self.structure:
            parts.append(self.structure)
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        where = ", ".join(parts) + ": " if parts else ""
        text = where + self.message
        return f"{text} ({self.hint})" if self.hint else text


class ChecksumError(FormatError):
    """Content does not match the checksum recorded beside it."""


class ReferenceRefused(ImageError):
    """The image names another file (a qcow2 backing file, a differencing VHD's parent) that
    may not be read where it is opened: outside the server's image store, or from inside an
    archive.  Its message never names the file the reference points at."""


class UnsupportedFeature(ImageError):
    """The image is valid but uses a feature glasspane does not implement."""


class LimitExceeded(ImageError):
    """A declared size or count is beyond what glasspane accepts (guards against absurd input)."""


class OutputError(GlasspaneError):
    """An output cannot be written."""

    exit_code = 4


class NoSpace(OutputError):
    """Writing would leave less than the kept reserve free on the disk."""


class NotFound(GlasspaneError):
    """A named object (host, VM, template) does not exist."""

    exit_code = 6


class Busy(GlasspaneError):
    """The server is at one of its limits (concurrent logins, event streams); carries when
    to try again."""

    exit_code = 5

    def __init__(self, message: str, *, retry_after: int = 1, hint: str | None = None
                 ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class RateLimited(Busy):
    """Too many attempts from one client (failed logins, event streams of one user)."""


class HostError(GlasspaneError):
    """A hypervisor host refused or failed an operation; names the host."""

    exit_code = 5

    def __init__(self, message: str, *, host: str | None = None, hint: str | None = None
                 ) -> None:
        super().__init__(f"host {host}: {message}" if host else message, hint=hint)
        self.host = host


class HostUnreachable(HostError):
    """The host cannot be reached (connection refused, no route, bad credentials)."""


class HostRefused(HostError):
    """A host to register failed its check: what the caller gave is wrong, not the server."""


class CommandFailed(GlasspaneError):
    """An external program failed; carries its command line and the end of its output."""

    exit_code = 7

    def __init__(self, message: str, *, command: str, output: str = "",
                 hint: str | None = None, status: int | None = None) -> None:
        tail = " | ".join(output.strip().splitlines()[-3:])
        ended = "failed" if status is None else f"exited with status {status}"
        super().__init__(f"{message}: `{command}` {ended}" + (f": {tail}" if tail else ""),
                         hint=hint)
        self.command = command
        self.output = output
        self.status = status


class BuildFailed(GlasspaneError):
    """A step of a template build failed; names the step, the end of its output and the
    build log, which holds all of it."""

    exit_code = 8

    def __init__(self, message: str, *, step: str, log: str, tail: str = "",
                 hint: str | None = None) -> None:
        text = f"build step {step}: {message}"
        if tail.strip():
            text += "\n  " + "\n  ".join(tail.strip().splitlines()[-8:])
        super().__init__(text + f"\n  (the whole log: {log})", hint=hint)
        self.detail = f"build step {step}: {message}"
        self.step = step
        self.log = log


class Unavailable(GlasspaneError):
    """What is asked cannot be done safely here: the server runs playbooks only in a
    sandbox, and it cannot make one (bubblewrap missing or refused by the kernel)."""

    exit_code = 9


class GuestError(HostError):
    """Reaching into a VM failed; names the host and the VM."""

    def __init__(self, message: str, *, host: str, vm: str, hint: str | None = None) -> None:
        GlasspaneError.__init__(self, f"host {host}, VM {vm}: {message}", hint=hint)
        self.host = host
        self.vm = vm
        self.detail = message


class GuestUnreachable(GuestError):
    """SSH to the VM was refused, dropped or timed out."""


class EngineError(GuestError):
    """The container engine in the VM refused or failed a request."""


class ProgramMissing(CommandFailed):
    """An external program glasspane needs is not installed; names it and its package."""

    def __init__(self, program: str, package: str) -> None:
        GlasspaneError.__init__(self, f"{program} is not installed",
                                hint=f"install {package}")
        self.command = program
        self.output = ""
        self.status = None
        self.package = package


class CommandTimedOut(CommandFailed):
    """An external program ran past its deadline and was killed; names it and the deadline."""

    def __init__(self, message: str, *, command: str, timeout: float, output: str = "") -> None:
        tail = " | ".join(output.strip().splitlines()[-3:])
        GlasspaneError.__init__(
            self, f"{message}: `{command}` did not finish within {timeout:g} s"
                  + (f": {tail}" if tail else ""))
        self.command = command
        self.output = output
        self.status = None
        self.timeout = timeout
