"""Host secrets encrypted at rest: the inventory database holds each host's password as a
Fernet token (AES-128-CBC with HMAC-SHA256, from `cryptography`), and the key is in
`host-secrets.key` in the configuration directory (mode 0600, made on first need).  Whoever
reads the database (a backup, another PostgreSQL user) learns nothing without that file;
every instance sharing the database needs the same one.

Rotation: the key file holds one key a line.  The first encrypts; every line decrypts
(MultiFernet).  To rotate, put a new key (`Fernet.generate_key()`) on the first line, run
`HostRegistry.rotate_secrets()`, then drop the old lines."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from glasspane.errors import Unavailable
from glasspane.settings import private_dir

KEY_FILE = "host-secrets.key"
# Named as the configuration directory is, never by its absolute path: the API shows it.
_WHERE = f"{KEY_FILE} in glasspane's configuration directory (GLASSPANE_CONFIG_DIR)"
_SHARE = ("every glasspane sharing the database needs the same key file: copy it (mode "
          "0600) from the instance that stored the hosts' passwords")


class SecretBox:
    """Encrypts and decrypts host secrets with the key file of `config_dir`."""

    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / KEY_FILE

    def _keys(self) -> MultiFernet | None:
        try:
            lines = self.path.read_text().split()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Unavailable(f"the host secrets' key file {_WHERE} cannot be read: "
                              f"{exc.strerror}", hint="it must be the server's own, 0600"
                              ) from exc
        try:
            return MultiFernet([Fernet(line.encode()) for line in lines]) if lines else None
        except ValueError:
            # Not the key's text: that could be a secret of its own.
            raise Unavailable(f"the host secrets' key file {_WHERE} does not hold Fernet "
                              "keys", hint="restore it from a backup, or " + _SHARE) from None

    def encrypt(self, secret: str, *, create: bool) -> str:
        """`secret` as a token; with `create`, a missing key file is made first (only when
        no secret was stored yet: a new key could not read the others)."""
        keys = self._keys()
        if keys is None:
            if not create:
                raise Unavailable(f"the database holds host passwords but {_WHERE} is "
                                  "missing", hint=_SHARE)
            keys = MultiFernet([Fernet(self._create())])
        return keys.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        keys = self._keys()
        if keys is None:
            raise Unavailable(f"the hosts' passwords cannot be read: {_WHERE} is missing",
                              hint=_SHARE)
        try:
            return keys.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise Unavailable(f"the hosts' passwords were stored with another key than "
                              f"{_WHERE}", hint=_SHARE) from exc

    def rotate(self, token: str) -> str:
        """`token` encrypted again with the key file's first key."""
        keys = self._keys()
        if keys is None:
            raise Unavailable(f"{_WHERE} is missing", hint=_SHARE)
        try:
            return keys.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise Unavailable(f"a host password was stored with a key {_WHERE} does not "
                              "hold", hint=_SHARE) from exc

    def _create(self) -> bytes:
        """A new key, written 0600 whole before it has the file's name (made beside it and
        linked: a concurrent maker's key wins, and is the one used)."""
        private_dir(self.path.parent)
        key = Fernet.generate_key()
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".key.")  # 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(key + b"\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temp, self.path)
            except FileExistsError:
                return self.path.read_text().split()[0].encode()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        return key
