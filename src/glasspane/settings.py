"""Where glasspane keeps its files: configuration, data and cache directories.

XDG locations by default, each overridable by an environment variable (GLASSPANE_CONFIG_DIR,
GLASSPANE_DATA_DIR, GLASSPANE_CACHE_DIR, GLASSPANE_RUNTIME_DIR, GLASSPANE_TEMPLATE_STORAGE,
GLASSPANE_VM_STORAGE, GLASSPANE_SSH_USER),
which is also how tests keep to their own directories and storage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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
        )


def machine_cache_dir() -> Path:
    """The user's own cache, whatever GLASSPANE_CACHE_DIR says: facts about the machine (the
    acceleration verdict, the probe kernel) are shared by every glasspane of the user, tests'
    included, so that none probes again."""
    return _xdg("XDG_CACHE_HOME", ".cache")
