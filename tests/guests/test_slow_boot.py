"""A guest that boots slowly but steadily (its console growing, as under TCG on a busy host)
is waited for past the wait's timeout, up to a bound; one that stays silent is not."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from glasspane.errors import HostError
from glasspane.guests.console import ConsoleWatch
from glasspane.guests.readiness import SLOW_BOOT_FACTOR, wait_for


@pytest.fixture
def printing(tmp_path: Path) -> Iterator[Path]:
    """A console log that a booting guest keeps writing to, line after line."""
    log = tmp_path / "console.log"
    log.write_text("")
    stop = threading.Event()

    def boot() -> None:
        count = 0
        while not stop.is_set():
            count += 1
            with log.open("a") as f:
                f.write(f"[ {count:6d}.000] still booting\n")
            stop.wait(0.05)
    writer = threading.Thread(target=boot, daemon=True)
    writer.start()
    yield log
    stop.set()
    writer.join()


def watch_of(log: Path) -> ConsoleWatch:
    return ConsoleWatch(str(log), lambda: "running", vm="slow-1", host="local",
                        hint="its kernel is not booting under TCG")


def test_a_guest_still_printing_is_waited_for_past_the_timeout(printing: Path) -> None:
    timeout = 0.5
    ready_after = time.monotonic() + timeout * 2  # between the timeout and its bound
    address = wait_for("an address for VM slow-1",
                       lambda: "192.0.2.7" if time.monotonic() >= ready_after else None,
                       timeout, "local", interval=0.05, watch=watch_of(printing))
    assert address == "192.0.2.7"


def test_past_the_bound_the_error_says_it_was_slow_not_broken(printing: Path) -> None:
    timeout = 0.3
    started = time.monotonic()
    with pytest.raises(HostError) as caught:
        wait_for("an address for VM slow-1", lambda: None, timeout, "local", interval=0.05,
                 watch=watch_of(printing))
    assert time.monotonic() - started >= timeout * SLOW_BOOT_FACTOR
    text = str(caught.value)
    assert "an address for VM slow-1 did not happen within 0 s (and " in text
    assert "while its console grew" in text and "still booting" in text
    assert "the host is slow" in text and "not booting under TCG" not in text


def test_a_silent_console_ends_at_the_timeout(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("[    0.000] Linux version 6.1\n")  # printed once, then nothing
    with pytest.raises(HostError) as caught:
        wait_for("an address for VM slow-1", lambda: None, 0.3, "local", interval=0.05,
                 watch=watch_of(log))
    text = str(caught.value)
    assert "did not happen within 0 s;" in text and "(and" not in text
    assert "not booting under TCG" in text
