"""The sandbox the server runs Ansible in: bubblewrap (`bwrap`, Debian package bubblewrap).

A playbook sent to the server is code: its lookups, filters and `pipe` run on the machine
that runs ansible-playbook, whatever its plays target.  So the server never runs one with
its own privileges.  Inside the sandbox the root filesystem is read-only; glasspane's
configuration, data, cache and runtime directories, home directories, /tmp, /run and /var
are empty tmpfs; /proc and /dev are fresh (a new PID namespace: the server's processes and
their environments cannot be seen); every capability is dropped; and the run is an
unprivileged user (when the server is root: `glasspane-ansible` if the machine has that
system user, else `nobody`).  The network is shared: Ansible reaches the VMs over SSH.  The
run's own files (playbook, inventory, variables, the SSH key) are one private directory,
the only writable place besides the tmpfs.

This is not the local CLI's concern: there the user runs their own playbook as themselves.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glasspane.errors import CommandFailed, ProgramMissing, Unavailable
from glasspane.process import require, run
from glasspane.settings import Settings

SANDBOX_USER = "glasspane-ansible"   # a system user made for this, when the machine has one
FALLBACK_USER = "nobody"
INSIDE = Path("/tmp/glasspane-run")  # noqa: S108 - the sandbox's own tmpfs: the run's files
HOME = Path("/tmp/home")             # noqa: S108 - HOME and Ansible's local state, in tmpfs
# Emptied whatever glasspane's settings say: homes, temporary files, sockets (libvirt's,
# PostgreSQL's), and /var (VM disks, databases, logs).
HIDDEN = (Path("/root"), Path("/home"), Path("/tmp"), Path("/var"), Path("/run"),  # noqa: S108
          Path("/srv"), Path("/mnt"), Path("/media"))
WRITABLE = (Path("/tmp"), Path("/var/tmp"))  # noqa: S108
# Secrets that are files in /etc: replaced by an empty file where the machine has them.
SECRET_FILES = (Path("/etc/shadow"), Path("/etc/gshadow"), Path("/etc/shadow-"),
                Path("/etc/gshadow-"), Path("/etc/sudoers"))

_probed: dict[tuple[str, tuple[int, int] | None], bool] = {}
_probe_lock = threading.Lock()


@dataclass(frozen=True)
class Sandbox:
    """How playbook runs are confined on this server (built from its settings)."""

    hidden: tuple[Path, ...]     # directories emptied inside, in mount order
    files: tuple[Path, ...] = ()  # and files emptied (the server's, outside those)

    @classmethod
    def for_settings(cls, settings: Settings) -> Sandbox:
        own = [settings.config_dir, settings.data_dir, settings.cache_dir, settings.runtime_dir]
        # A directory and what it really is (a symlinked data directory is hidden too).
        paths = [p for path in own for p in (path.absolute(), path.resolve())]
        files = [p for path in settings.secret_files for p in (path.absolute(), path.resolve())]
        return cls(_outermost([*HIDDEN, *paths]), tuple(dict.fromkeys(files)))

    def user(self) -> tuple[int, int] | None:
        """The (uid, gid) a run switches to, or None to run as the server itself (not
        root: its own files are what the tmpfs hide)."""
        if os.getuid() != 0:
            return None
        for name in (SANDBOX_USER, FALLBACK_USER):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            if entry.pw_uid != 0:
                return entry.pw_uid, entry.pw_gid
        raise Unavailable(f"no unprivileged user to run playbooks as ({SANDBOX_USER} or "
                          f"{FALLBACK_USER})", hint=f"create the system user {SANDBOX_USER}")

    def run_as(self) -> dict[str, Any]:
        """process.py's `as_user`: what runs a program as the sandbox's user, outside it."""
        who = self.user()
        return {} if who is None else {"user": who[0], "group": who[1], "extra_groups": []}

    def command(self, work: Path | None, argv: list[str]) -> list[str]:
        """`argv` run inside the sandbox, with `work` (the run's private directory) as
        INSIDE and the current directory INSIDE/play."""
        who = self.user()
        args = [_bwrap(), "--die-with-parent", "--new-session"]
        if who is None:  # a user namespace of our own, in which we hold nothing
            args += ["--unshare-all", "--share-net", "--cap-drop", "ALL"]
        else:
            # As root, no user namespace (its uid 0 would still own root's files): bwrap
            # builds the mounts, and setpriv, keeping only what it needs to, becomes the
            # sandbox user with no capabilities at all and no way to gain any.
            args += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
                     "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add",
                     "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        # A fresh /dev with its own shared memory (Ansible's workers need it).
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--perms", "01777", "--tmpfs",
                 "/dev/shm", "--proc", "/proc"]  # noqa: S108 - inside the sandbox
        args += self._mounts()
        if work is not None:
            args += ["--bind", str(work), str(INSIDE)]
        if who is not None:
            args += ["--", _setpriv(), f"--reuid={who[0]}", f"--regid={who[1]}",
                     "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                     "--no-new-privs"]
        if work is not None:
            # Into the playbook's directory as the sandbox's user: the run's directory is
            # that user's alone (bwrap's own --chdir would go as root, without capabilities).
            argv = ["/bin/sh", "-c", 'cd -- "$1" && shift && exec "$@"', "sh",
                    str(INSIDE / "play"), *argv]
        return [*args, "--", *argv]

    def _mounts(self) -> list[str]:
        args: list[str] = []
        for path in self.hidden:
            if path.is_dir():
                # /tmp as usual (HOME, Ansible's local state and ssh's are in it).
                writable = ["--perms", "01777"] if path in WRITABLE else []
                args += [*writable, "--tmpfs", str(path)]
        for path in (*SECRET_FILES, *self._own_files()):
            if path.exists():
                args += ["--ro-bind", "/dev/null", str(path)]
        # Python and ansible-core themselves, should they live under a hidden directory:
        # bound back read-only, through directories anyone may cross.
        for path in _outermost(p for p in _python_paths() if self._is_hidden(p)):
            hidden = next(h for h in self.hidden if path.is_relative_to(h))
            for parent in reversed(path.parents):
                if parent.is_relative_to(hidden) and parent != hidden:
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", str(path), str(path)]
        return args

    def _own_files(self) -> list[Path]:
        """The server's files to hide that no hidden directory holds: each, and an SQLite
        database's journal and write-ahead log beside it."""
        found = [Path(f"{path}{suffix}") for path in self.files
                 for suffix in ("", "-journal", "-wal", "-shm")]
        return [p for p in found if p.is_file() and not self._is_hidden(p)]

    def _is_hidden(self, path: Path) -> bool:
        return any(path.is_relative_to(h) for h in self.hidden)

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        """The whole environment inside: nothing of the server's (it may hold a database
        URL with its password)."""
        program_dir = str(Path(sys.executable).parent)
        return {"PATH": f"{program_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(HOME),
                "LANG": "C.UTF-8", "ANSIBLE_HOME": str(HOME / ".ansible"),
                "ANSIBLE_LOCAL_TEMP": str(HOME / ".ansible" / "tmp"), **extra}

    def hand_over(self, work: Path) -> None:
        """Make the run's directory (0700) the sandbox user's alone."""
        who = self.user()
        if who is None:
            return
        for root, dirs, files in os.walk(work):
            for name in [root, *(os.path.join(root, n) for n in [*dirs, *files])]:
                os.lchown(name, *who)

    def check(self) -> None:
        """Unavailable unless a sandbox can be made here now (tried once, then trusted)."""
        key = (_bwrap(), self.user())
        with _probe_lock:
            if _probed.get(key):
                return
            try:
                run(self.command(None, ["/bin/true"]), "trying the sandbox", timeout=30,
                    env=self.environment({}))
            except CommandFailed as exc:
                raise _unavailable(exc.detail[-300:]) from exc
            _probed[key] = True


def playbook_sandbox(settings: Settings) -> Sandbox | None:
    """The sandbox playbooks run in under these settings (the server's), or None (the
    local CLI: the user's playbook runs as the user)."""
    return Sandbox.for_settings(settings) if settings.sandbox_playbooks else None


def _setpriv() -> str:
    try:
        return require("setpriv")
    except ProgramMissing as exc:
        raise _unavailable("setpriv (util-linux) is not installed") from exc


def _bwrap() -> str:
    try:
        return require("bwrap")
    except ProgramMissing as exc:
        raise _unavailable("bwrap is not installed") from exc


def _unavailable(reason: str) -> Unavailable:
    return Unavailable(f"playbooks run on the server only in a sandbox, and none can be made "
                       f"here: {reason}",
                       hint="install bubblewrap (apt-get install bubblewrap) and allow "
                            "unprivileged user namespaces")


def _python_paths() -> list[Path]:
    ansible = importlib.util.find_spec("ansible")
    found = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent]
    if ansible is not None and ansible.origin:
        found.append(Path(ansible.origin).resolve().parent)
    return found


def _outermost(paths: Iterable[Path]) -> tuple[Path, ...]:
    """The paths, without those inside another one (whose mount would cover them)."""
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return tuple(kept)
