"""Kept SSH connections into VMs.

One OpenSSH master connection per VM (ControlMaster), started on first use and kept for
CONTROL_PERSIST seconds of idleness, across glasspane processes: every command and every
relay channel afterwards rides on it, so only the first call pays for TCP, key exchange and
authentication.  OpenSSH rather than a Python SSH implementation: it is what every guest's sshd
is tested against, and it honours the administrator's ssh_config (ProxyJump to reach VMs on a
remote host's private network).

Host keys are trusted on first use and remembered per VM identity (HostKeyAlias = the VM's
UUID) in glasspane's own known_hosts: a VM recreated at a recycled address is a new host, and
a known VM whose key changes is refused.

Remote commands are argument lists; they are quoted with shlex.join for the remote shell, never
assembled from strings.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from glasspane.errors import CommandTimedOut, GuestUnreachable, UsageError
from glasspane.locks import file_lock
from glasspane.process import DEVNULL, PIPE, STDOUT, Result, Running, call, spawn

CONTROL_PERSIST = 600  # seconds an idle master stays up
CONNECT_TIMEOUT = 10
# A dead peer (VM paused, network gone) is noticed within 5 s x 3 rather than TCP's minutes.
KEEPALIVE = ("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")


@dataclass(frozen=True)
class SshTarget:
    host: str           # glasspane's name of the VM's host, for messages
    vm: str
    vm_uuid: str
    address: str
    user: str
    identity: Path
    known_hosts: Path

    @property
    def identity_key(self) -> str:
        """What makes two connections interchangeable (and names the control socket)."""
        return f"{self.user}@{self.address}/{self.vm_uuid}/{self.identity}"


def private_dir(path: Path) -> Path:
    """`path` as a directory only we may enter (control sockets live there)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise UsageError(f"{path} is not a directory of ours",
                         hint="set GLASSPANE_RUNTIME_DIR to a private directory")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def _classify(target: SshTarget, stderr: str) -> GuestUnreachable:
    """One clear error for each way an SSH connection fails."""
    where = f"{target.user}@{target.address}"
    text = stderr.strip()
    if "Permission denied" in text:
        return GuestUnreachable(
            f"SSH at {where} refused glasspane's key", host=target.host, vm=target.vm,
            hint="VMs created by glasspane have it; for others add "
                 f"{target.identity}.pub to the user's authorized_keys")
    if "IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        return GuestUnreachable(
            f"the SSH host key of {where} is not the one glasspane saw first",
            host=target.host, vm=target.vm,
            hint=f"if the VM was reinstalled, remove glasspane-{target.vm_uuid} from "
                 f"{target.known_hosts}")
    if "Connection refused" in text:
        return GuestUnreachable(f"nothing listens for SSH at {target.address}",
                                host=target.host, vm=target.vm,
                                hint="is sshd running in the VM?")
    if "timed out" in text or "No route" in text or "unreachable" in text:
        return GuestUnreachable(f"SSH at {target.address} did not answer", host=target.host,
                                vm=target.vm, hint="is the VM up and its network configured?")
    last = text.splitlines()[-1] if text else "the connection closed"
    return GuestUnreachable(f"SSH to {where} failed: {last}", host=target.host, vm=target.vm)


class SshConnection:
    """The kept connection to one VM; thread-safe."""

    def __init__(self, target: SshTarget, runtime_dir: Path) -> None:
        self.target = target
        digest = hashlib.sha256(target.identity_key.encode()).hexdigest()[:16]
        base = private_dir(runtime_dir)
        self.control = base / f"ssh-{digest}"
        self._log = base / f"ssh-{digest}.log"
        self._lock = threading.Lock()

    def _options(self) -> list[str]:
        t = self.target
        return ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                *KEEPALIVE, "-o", "StrictHostKeyChecking=accept-new",
                "-o", f"UserKnownHostsFile={t.known_hosts}",
                "-o", f"HostKeyAlias=glasspane-{t.vm_uuid}", "-o", "IdentitiesOnly=yes",
                "-i", str(t.identity), "-o", f"ControlPath={self.control}", "-l", t.user]

    def alive(self) -> bool:
        """Whether the master connection is up."""
        if not self.control.exists():
            return False
        try:
            return _control(self.control, "check", self.target.address).returncode == 0
        except CommandTimedOut:
            return False

    def connect(self) -> None:
        """Make sure a master connection is up (starting one takes the SSH handshake)."""
        with self._lock, file_lock(self.control.with_name(self.control.name + ".lock")):
            if self.alive():
                return
            self.control.unlink(missing_ok=True)  # the socket of a master that died
            self.target.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with open(self._log, "w+b") as log:
                try:
                    # -f: back to us once authenticated; the master lives on in the background
                    # (its standard error a file, not a pipe this call would wait on).
                    done = call(
                        [*self._options(), "-M", "-N", "-f",
                         "-o", f"ControlPersist={CONTROL_PERSIST}", self.target.address],
                        "connecting to the VM", stdout=DEVNULL, stderr=log,
                        timeout=CONNECT_TIMEOUT * 3)
                except CommandTimedOut as exc:
                    raise GuestUnreachable(
                        f"SSH at {self.target.address} did not complete its handshake",
                        host=self.target.host, vm=self.target.vm) from exc
                if done.returncode != 0:
                    log.seek(0)
                    raise _classify(self.target, log.read().decode(errors="replace"))

    def _command(self, command: Sequence[str]) -> list[str]:
        return [*self._options(), "-o", "ControlMaster=no", self.target.address, "--",
                shlex.join(command)]

    def run(self, command: Sequence[str], *, input_data: bytes | None = None,
            timeout: float = 60) -> Result:
        """Run `command` in the VM; its exit status is the caller's to judge, but a broken
        connection raises GuestUnreachable."""
        self.connect()
        try:
            done = call(self._command(command), "running a command in the VM",
                        input=input_data, timeout=timeout)
        except CommandTimedOut as exc:
            raise self._too_long(command, timeout) from exc
        if done.returncode == 255:  # ssh's own failure, not the command's
            raise _classify(self.target, done.stderr.decode(errors="replace"))
        return done

    def open(self, command: Sequence[str], stderr: IO[bytes]) -> Running:
        """Start `command` in the VM with its standard input and output as pipes to us; the
        caller stops it (a relay: its reads and writes have their own timeouts)."""
        self.connect()
        return spawn(self._command(command), "relaying in the VM", timeout=None, stdin=PIPE,
                     stdout=PIPE, stderr=stderr)

    def stream(self, command: Sequence[str], on_output: Callable[[bytes], None], *,
               input_data: bytes | Path | None = None, timeout: float = 1800) -> int:
        """Run `command` in the VM, handing its output (stdout and stderr merged, as it
        comes) to `on_output`; its exit status.  A broken connection raises GuestUnreachable;
        a command running past `timeout` s is killed and raises it too."""
        self.connect()
        with spawn(self._command(command), "running a command in the VM", timeout=timeout,
                   stdin=PIPE if input_data is not None else DEVNULL, stdout=PIPE,
                   stderr=STDOUT) as process:
            if input_data is not None:
                assert process.stdin is not None
                threading.Thread(target=_feed, args=(process.stdin, input_data),
                                 daemon=True).start()
            assert process.stdout is not None
            tail = b""
            while chunk := os.read(process.stdout.fileno(), 65536):
                tail = (tail + chunk)[-4096:]
                on_output(chunk)
            try:
                status = process.finish()
            except CommandTimedOut as exc:
                raise self._too_long(command, timeout) from exc
        if status == 255:  # ssh's own failure, not the command's
            raise _classify(self.target, tail.decode(errors="replace"))
        return status

    def _too_long(self, command: Sequence[str], timeout: float) -> GuestUnreachable:
        return GuestUnreachable(f"`{shlex.join(command)[:200]}` did not finish within "
                                f"{timeout:.0f} s", host=self.target.host, vm=self.target.vm)

    def close(self) -> None:
        """Stop the master (and with it every channel riding on it)."""
        if self.control.exists():
            _stop_master(self.control, self.target.address)


def _control(control: Path, request: str, address: str) -> Result:
    """Ask the master behind `control` to `check` or `exit`."""
    return call(["ssh", "-o", f"ControlPath={control}", "-O", request, address],
                f"asking the SSH master to {request}", timeout=10)


def _stop_master(control: Path, address: str) -> None:
    with contextlib.suppress(CommandTimedOut):  # a hung master goes at its ControlPersist
        _control(control, "exit", address)


def _feed(stdin: IO[bytes], data: bytes | Path) -> None:
    try:
        if isinstance(data, Path):
            with data.open("rb") as source:
                shutil.copyfileobj(source, stdin, 1 << 20)
        else:
            stdin.write(data)
        stdin.close()
    except (OSError, ValueError):  # the command exited without reading it all (its status
        # says why), or ended and its pipe was closed under us
        pass


def stop_masters(runtime_dir: Path) -> int:
    """Stop every kept master connection under `runtime_dir`; how many there were."""
    stopped = 0
    for control in runtime_dir.glob("ssh-*") if runtime_dir.is_dir() else []:
        if control.is_socket():
            _stop_master(control, "glasspane")
            stopped += 1
    return stopped
