"""Where glasspane keeps its files: configuration, data and cache directories.

XDG locations by default, each overridable by an environment variable (GLASSPANE_CONFIG_DIR,
GLASSPANE_DATA_DIR, GLASSPANE_CACHE_DIR, GLASSPANE_RUNTIME_DIR, GLASSPANE_TEMPLATE_STORAGE,
GLASSPANE_VM_STORAGE, GLASSPANE_SSH_USER, GLASSPANE_STORE_RESERVE_MIB),
which is also how tests keep to their own directories and storage; and the server's bounds on
what a spec's context may unpack to (GLASSPANE_CONTEXT_LIMIT, bytes with an optional K/M/G/T
suffix, and GLASSPANE_CONTEXT_MEMBERS).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from glasspane.errors import UsageError

# A template's context holds a spec, scripts and perhaps a base image: a few GiB.
DEFAULT_CONTEXT_LIMIT = 4 << 30
DEFAULT_CONTEXT_MEMBERS = 10_000
_SIZE = re.compile(r"^\s*(\d{1,15})\s*([KMGT]?)i?B?\s*$", re.I)
_SHIFTS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}


def _xdg(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable) or os.path.join(os.path.expanduser("~"), fallback)
    return Path(base) / "glasspane"


def _runtime() -> Path:
    # Sockets (SSH control masters) need a short path and a directory only we can enter.
    base = os.environ.get("XDG_RUNTIME_DIR")
    # Without XDG_RUNTIME_DIR: a per-user /tmp directory, checked to be ours and 0700 before
    # use (guests.ssh.private_dir).
    return Path(base) / "glasspane" if base else Path(f"/tmp/glasspane-{os.getuid()}")  # noqa: S108


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    runtime_dir: Path
    template_storage: str = "glasspane-templates"  # the storage on each host for templates
    vm_storage: str = "glasspane-vms"              # and for VMs' disks and seeds
    ssh_user: str = "debian"                       # the templates' default cloud-init user
    store_reserve: int = 256 << 20                 # bytes the image store leaves free
    # Set by the server for its tasks: playbooks (vm configure, a build's ansible step) run
    # in the sandbox, never as the server (guests.sandbox).
    sandbox_playbooks: bool = False
    context_limit: int = DEFAULT_CONTEXT_LIMIT     # bytes a context may unpack to
    context_members: int = DEFAULT_CONTEXT_MEMBERS  # and files and directories it may hold
    # The server's own files outside its directories (set by `serve`: its TLS key, its
    # database's password file, its SQLite database): the playbook sandbox hides them too.
    secret_files: tuple[Path, ...] = ()
    # The inventory database this glasspane acts on (set by the server to its own; else
    # GLASSPANE_DATABASE_URL or SQLite in the data directory): registered hosts live there.
    # It may carry a password: never in a repr.
    database_url: str = field(default="", repr=False)

    @classmethod
    def load(cls) -> Settings:
        env = os.environ.get
        return cls(
            config_dir=Path(env("GLASSPANE_CONFIG_DIR") or _xdg("XDG_CONFIG_HOME", ".config")),
            data_dir=Path(env("GLASSPANE_DATA_DIR") or _xdg("XDG_DATA_HOME", ".local/share")),
            cache_dir=Path(env("GLASSPANE_CACHE_DIR") or _xdg("XDG_CACHE_HOME", ".cache")),
            runtime_dir=Path(env("GLASSPANE_RUNTIME_DIR") or _runtime()),
            template_storage=env("GLASSPANE_TEMPLATE_STORAGE") or "glasspane-templates",
            vm_storage=env("GLASSPANE_VM_STORAGE") or "glasspane-vms",
            ssh_user=env("GLASSPANE_SSH_USER") or "debian",
            store_reserve=_mib(env("GLASSPANE_STORE_RESERVE_MIB"), 256) << 20,
            context_limit=_bound("GLASSPANE_CONTEXT_LIMIT", DEFAULT_CONTEXT_LIMIT, True),
            context_members=_bound("GLASSPANE_CONTEXT_MEMBERS", DEFAULT_CONTEXT_MEMBERS),
        )


def _bound(variable: str, default: int, size: bool = False) -> int:
    """A positive count (or size, with K/M/G/T) from the environment."""
    text = os.environ.get(variable)
    if not text:
        return default
    match = _SIZE.match(text)
    if not match or (match.group(2) and not size) or int(match.group(1)) == 0:
        raise UsageError(f"{variable}={text[:40]!r} is not a positive "
                         f"{'size (e.g. 4G)' if size else 'number'}")
    return int(match.group(1)) << _SHIFTS[match.group(2).upper()]


def _mib(value: str | None, default: int) -> int:
    if not value:
        return default
    try:
        return max(0, int(value))
    except ValueError:
        from glasspane.errors import UsageError
        raise UsageError(f"GLASSPANE_STORE_RESERVE_MIB={value!r} is not a number of MiB"
                         ) from None


def private_dir(path: Path) -> Path:
    """`path` as a directory its owner alone may enter (0700), made so if it was not: the
    configuration directory holds host credentials, glasspane's SSH key, the first admin's
    password and the CLI's token, and `mkdir(mode=...)` leaves an existing directory (or the
    parents it makes) as they were."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def private_file(fd: int) -> None:
    """The open file `fd` readable by its owner alone (0600), even if it existed before with
    a wider mode (os.open's mode applies only to a file it creates)."""
    os.fchmod(fd, 0o600)


def machine_cache_dir() -> Path:
    """The user's own cache, whatever GLASSPANE_CACHE_DIR says: facts about the machine (the
    acceleration verdict, the probe kernel) are shared by every glasspane of the user, tests'
    included, so that none probes again."""
    return _xdg("XDG_CACHE_HOME", ".cache")
