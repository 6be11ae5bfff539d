"""glasspane's own SSH key pair: generated once, installed in every VM glasspane creates (beside
the user's keys), and used for everything glasspane does inside VMs (containers, provisioning).
The private key never leaves the config directory and is readable by its owner only."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from glasspane.locks import file_lock
from glasspane.process import require, run
from glasspane.settings import Settings, private_dir


def management_key(settings: Settings) -> Path:
    """The private key's path, generating the pair on first use."""
    key = settings.config_dir / "ssh" / "id_ed25519"
    if key.exists():
        return key
    private_dir(settings.config_dir)
    private_dir(key.parent)
    with file_lock(key.parent / ".lock"):  # two first runs at once make one pair, not a mix
        if not key.exists():
            _generate(key)
    return key


def _generate(key: Path) -> None:
    partial = key.with_name(f".{key.name}.{os.getpid()}")
    for leftover in (partial, partial.with_suffix(".pub")):
        leftover.unlink(missing_ok=True)
    run([require("ssh-keygen", "openssh-client"), "-q", "-t", "ed25519", "-N", "",
         "-C", f"glasspane@{socket.gethostname()}", "-f", str(partial)],
        "generating glasspane's SSH key", timeout=30)
    os.chmod(partial, 0o600)
    # Public half first: whoever sees the private key may rely on the public one being there.
    os.replace(partial.with_name(partial.name + ".pub"), key.with_name(key.name + ".pub"))
    os.replace(partial, key)


def management_public_key(settings: Settings) -> str:
    key = management_key(settings)
    return key.with_name(key.name + ".pub").read_text().strip()
