"""Watching a new VM's serial console while glasspane waits for it to boot.

A guest whose console stays silent while its domain runs is not booting: on a machine where
KVM was wrongly judged usable (a paravirtual /dev/kvm), the kernel prints nothing and every wait
would otherwise run to its timeout without a word.  Silence is judged by the console log not
growing while the domain runs (time paused or stopped does not count), over a generous bound;
and every failed wait says what the console printed last.

Not here: reading consoles for users (vms/service.py console_log) beyond the cleaning shared
with it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from glasspane.errors import HostError

# Far beyond any gap in a TCG boot on a loaded machine (systemd and cloud-init print as they
# go; a guest starved of CPU by its neighbours is slow, not silent for minutes), below a
# wait's usual timeout.  Too short would kill a slow guest that was booting; too long only
# delays the error, which a timeout also gives with the console's lines.
SILENCE_LIMIT = 180.0
# A guest whose console grew this recently is still booting: a wait's timeout does not end
# it (a TCG boot on a host busy with other guests took past 300 s, printing all along).
PROGRESS_WINDOW = 60.0
TAIL_LINES = 12
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_console(text: str) -> str:
    """Console output for reading: no terminal colours, no carriage returns."""
    return _ANSI.sub("", text).replace("\r", "")


class ConsoleWatch:
    """The console log `log` of VM `vm` (None where it cannot be read from here, such as on
    a remote host); `state()` is the domain's power state; `hint` says what to do when the
    VM is not booting."""

    def __init__(self, log: str | None, state: Callable[[], str], *, vm: str, host: str,
                 hint: str, limit: float | None = None) -> None:
        self.log = Path(log) if log else None
        self.state = state
        self.vm, self.host, self.hint = vm, host, hint
        self.limit = SILENCE_LIMIT if limit is None else limit
        self._size = self._read_size()
        self._quiet_since = time.monotonic()
        self._grew_at: float | None = None

    def _read_size(self) -> int | None:
        try:
            return self.log.stat().st_size if self.log else None
        except OSError:
            return None

    def check(self) -> None:
        """HostError (with the console's last lines) if the VM stopped, or if its console
        has not grown for `limit` s of running."""
        size, state, now = self._read_size(), self.state(), time.monotonic()
        if state in ("halted", "crashed"):
            raise HostError(f"VM {self.vm} stopped ({state}) while booting; "
                            f"{self.describe()}", host=self.host, hint=self.hint)
        if size != self._size or state != "running" or size is None:
            if size is not None and self._size is not None and size > self._size:
                self._grew_at = now
            self._size, self._quiet_since = size, now  # growing, paused, or not readable
            return
        if now - self._quiet_since >= self.limit:
            raise HostError(f"VM {self.vm} is running but its serial console has not grown "
                            f"for {self.limit:.0f} s: it is not booting; {self.describe()}",
                            host=self.host, hint=self.hint)

    def booting(self) -> bool:
        """Whether the console grew within the last PROGRESS_WINDOW s (as of the last
        `check`): the guest is making progress, however slowly."""
        return self._grew_at is not None and \
            time.monotonic() - self._grew_at < PROGRESS_WINDOW

    def tail(self, lines: int = TAIL_LINES) -> list[str] | None:
        """The console's last non-blank lines (cleaned, each cut to 200 characters), None
        when it cannot be read."""
        if self.log is None:
            return None
        try:
            with self.log.open("rb") as f:
                f.seek(max(0, f.seek(0, 2) - 16384))  # the end is all that is shown
                text = f.read().decode(errors="replace")
        except OSError:
            return None
        kept = [_CONTROL.sub("", line)[:200] for line in clean_console(text).splitlines()]
        return [line for line in kept if line.strip()][-lines:]

    def describe(self) -> str:
        """A sentence on the console for an error message."""
        lines = self.tail()
        if lines is None:
            return "its console cannot be read from here"
        if not lines:
            return "its serial console printed nothing"
        return "the console's last lines:\n  | " + "\n  | ".join(lines) + "\n"
