"""The registered hosts, kept in `hosts.json` in the configuration directory (mode 0600,
replaced atomically).  The local libvirt host is always there, as `local`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from glasspane.errors import NotFound, UsageError
from glasspane.hypervisors.uris import check_uri
from glasspane.settings import private_dir

DRIVERS = ("libvirt", "xenapi")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class HostRecord:
    name: str
    uri: str
    driver: str = "libvirt"
    user: str = ""           # xenapi: the XAPI user (the password is in HostSecrets)
    verify_tls: bool = True  # xenapi over https: check the pool master's certificate
    ca_file: str = ""        # xenapi over https: the pinned certificate (a copy, in certs/)


LOCAL = HostRecord("local", "qemu:///system")


class HostRegistry:
    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / "hosts.json"

    def _stored(self) -> list[HostRecord]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.path} is unreadable: {exc}",
                             hint="fix or remove the file") from None
        return [HostRecord(**item) for item in data.get("hosts", [])]

    def all(self) -> list[HostRecord]:
        return [LOCAL, *self._stored()]

    def get(self, name: str) -> HostRecord:
        for record in self.all():
            if record.name == name:
                return record
        raise NotFound(f"no host named {name!r}",
                       hint="`glasspane host list` shows the registered hosts")

    def add(self, record: HostRecord) -> None:
        self.check_new(record)
        self._save([*self._stored(), record])

    def check_new(self, record: HostRecord) -> None:
        """Raise UsageError unless `record` could be added."""
        if not _NAME.match(record.name):
            raise UsageError(f"invalid host name {record.name!r}",
                             hint="lowercase letters, digits, '.', '_' and '-'")
        if record.driver not in DRIVERS:
            raise UsageError(f"unknown driver {record.driver!r} (one of {', '.join(DRIVERS)})")
        check_uri(record.uri, record.driver)
        if any(r.name == record.name for r in self.all()):
            raise UsageError(f"a host named {record.name!r} is already registered")

    def remove(self, name: str) -> None:
        if name == LOCAL.name:
            raise UsageError("the local host is built in and cannot be removed")
        stored = self._stored()
        if not any(r.name == name for r in stored):
            raise NotFound(f"no host named {name!r}")
        self._save([r for r in stored if r.name != name])
        HostSecrets(self.path.parent).set(name, None)
        (self.path.parent / "certs" / f"{name}.pem").unlink(missing_ok=True)

    def _save(self, records: list[HostRecord]) -> None:
        private_dir(self.path.parent)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".hosts.", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"hosts": [asdict(r) for r in records]}, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


class HostSecrets:
    """Host passwords, apart from the registry, in `host-secrets.json` (mode 0600, replaced
    atomically): the registry can be shown and shared, this file cannot."""

    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / "host-secrets.json"

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.path} is unreadable: {exc}") from None
        return {str(k): str(v) for k, v in data.items()}

    def get(self, name: str) -> str:
        return self._load().get(name, "")

    def set(self, name: str, secret: str | None) -> None:
        data = self._load()
        if secret is None:
            data.pop(name, None)
        else:
            data[name] = secret
        private_dir(self.path.parent)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".secrets.", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:  # mkstemp makes it 0600
                json.dump(data, f)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
