"""The steps a template build runs in its VM over SSH: `shell`, `file`, `ansible`, and the
generalization that makes every VM cloned from the template a new machine.

Every step's output goes to the build log as it comes (and, through the log's echo, to the
terminal); a step that fails raises BuildFailed naming the step with the end of its output.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from glasspane.errors import BuildFailed, Unavailable, UsageError
from glasspane.guests.ansible import run_playbook
from glasspane.guests.sandbox import Sandbox
from glasspane.guests.ssh import SshConnection
from glasspane.templates.spec import Provisioner

# Generalize: what makes a booted machine one particular machine goes, so that each VM made
# from the template gets its own (cloud-init runs again, new machine-id, new host keys).
GENERALIZE = """\
set -eu
cloud-init clean --logs --seed 2>/dev/null || rm -rf /var/lib/cloud/* /var/log/cloud-init*
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed
rm -f /root/.bash_history /home/*/.bash_history /root/.ssh/authorized_keys \
      /home/*/.ssh/authorized_keys
rm -rf /var/log/journal/* /tmp/* /var/tmp/*
find /var/log -type f \\( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \\) -delete
find /var/log -type f -exec truncate -s 0 {} +
rm -f /var/lib/dhcp/*.leases
apt-get clean 2>/dev/null || true
sync
"""
# A script from the spec keeps its own interpreter line; inline lines run under sh -eu.
INLINE_SHEBANG = "#!/bin/sh -eu\n"
# Writes standard input to $1 with mode $2 and renames it into place: a constant script, the
# path and mode passed as arguments (never spliced into the command line).
# Parent directories get the usual mode (0755); only the partial file is private until chmod.
WRITE_FILE = ('mkdir -p -- "$(dirname -- "$1")" && (umask 077; cat > "$1.glasspane-part") && '
              'chmod "$2" "$1.glasspane-part" && mv -f -- "$1.glasspane-part" "$1"')
UNPACK_DIR = 'mkdir -p -- "$1" && tar -C "$1" --no-same-owner -xf -'


class BuildLog:
    """The build's log file, with each write also handed to `echo` (the terminal)."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._file: IO[bytes] = path.open("wb")
        self._echo = echo
        self._tail = bytearray()
        self._lock = threading.Lock()
        self._began = time.monotonic()

    def step(self, title: str) -> None:
        elapsed = int(time.monotonic() - self._began)
        self.write(f"==> [{elapsed // 60:02d}:{elapsed % 60:02d}] {title}\n".encode())

    def write(self, chunk: bytes) -> None:
        with self._lock:
            self._file.write(chunk)
            self._file.flush()
            self._tail = (self._tail + chunk)[-16384:]
        if self._echo is not None:
            self._echo(chunk.decode(errors="replace"))

    def tail(self) -> str:
        """The last lines written (for an error message)."""
        return self._tail.decode(errors="replace")

    def close(self) -> None:
        self._file.close()

    def failed(self, step: str, message: str, hint: str | None = None) -> BuildFailed:
        return BuildFailed(message, step=step, log=str(self.path), tail=self.tail(),
                           hint=hint)


def run_provisioner(conn: SshConnection, step: Provisioner, log: BuildLog, name: str,
                    sandbox: Sandbox | None = None) -> None:
    """Run one provisioner in the build VM (`name`: its name in Ansible's inventory); an
    ansible step in `sandbox` when the build is the server's."""
    log.step(f"{step.where}")
    if step.kind == "shell":
        _shell(conn, step, log)
    elif step.kind == "file":
        _file(conn, step, log)
    else:
        _ansible(conn, step, log, name, sandbox)


def _sudo(step: Provisioner) -> list[str]:
    return ["sudo", "-n"] if step.sudo else []


def _shell(conn: SshConnection, step: Provisioner, log: BuildLog) -> None:
    if step.script is not None:
        text = step.script.read_text(errors="replace")
        text = text if text.startswith("#!") else INLINE_SHEBANG + text
    else:
        text = INLINE_SHEBANG + "\n".join(step.inline) + "\n"
    remote = f"/tmp/glasspane-step-{uuid.uuid4().hex[:12]}"  # noqa: S108 - the VM's /tmp
    _check(conn.run(["sh", "-c", WRITE_FILE, "sh", remote, "0700"], input_data=text.encode(),
                    timeout=60).returncode, step, log, "could not upload the script")
    environment = [f"{k}={v}" for k, v in step.environment.items()]
    status = conn.stream([*_sudo(step), "env", *environment, remote], log.write,
                         timeout=step.timeout)
    conn.run(["rm", "-f", remote], timeout=60)
    _check(status, step, log, f"exited with status {status}")


def _file(conn: SshConnection, step: Provisioner, log: BuildLog) -> None:
    assert step.source is not None
    if step.source.is_dir():
        # Packed into a temporary file first: a directory may be larger than memory.
        with tempfile.NamedTemporaryFile(prefix="glasspane-upload-", suffix=".tar") as packed:
            _tar_of(step.source, packed)
            status = conn.stream(["sudo", "-n", "sh", "-c", UNPACK_DIR, "sh",
                                  step.destination], log.write, input_data=Path(packed.name),
                                 timeout=step.timeout)
        _check(status, step, log, f"unpacking into {step.destination} failed")
    else:
        mode = step.mode or oct(os.stat(step.source).st_mode & 0o777)[2:]
        status = conn.stream(["sudo", "-n", "sh", "-c", WRITE_FILE, "sh", step.destination,
                              mode], log.write, input_data=step.source,
                             timeout=step.timeout)
        _check(status, step, log, f"writing {step.destination} failed")
    log.write(f"uploaded {step.source} to {step.destination}\n".encode())


def _tar_of(directory: Path, sink: IO[bytes]) -> None:
    with tarfile.open(fileobj=sink, mode="w") as archive:
        for child in sorted(directory.iterdir()):
            archive.add(child, arcname=child.name)
    sink.flush()


def _ansible(conn: SshConnection, step: Provisioner, log: BuildLog, name: str,
             sandbox: Sandbox | None) -> None:
    assert step.playbook is not None
    try:
        result = run_playbook(step.playbook, [(name, conn.target)], log.write,
                              extra_vars=step.extra_vars, timeout=step.timeout,
                              sandbox=sandbox)
    except (UsageError, Unavailable) as exc:  # refused before it ran: say which step
        raise log.failed(f"{step.where}", exc.message, hint=exc.hint) from None
    _check(result.status, step, log, f"ansible-playbook exited with status {result.status}")


def generalize(conn: SshConnection, log: BuildLog) -> None:
    log.step("generalize: cloud-init state, machine-id, SSH host keys, logs, history")
    # From standard input: the script empties /tmp.
    status = conn.stream(["sudo", "-n", "sh", "-s"], log.write,
                         input_data=GENERALIZE.encode(), timeout=600)
    if status != 0:
        raise log.failed("generalize", f"exited with status {status}")


def _check(status: int, step: Provisioner, log: BuildLog, message: str) -> None:
    if status != 0:
        raise log.failed(f"{step.where}", message,
                         hint="fix the step and build again; nothing was kept")
