"""The acceleration probe on this machine: KVM only after a guest kernel has printed under it,
the verdict cached in the machine's cache (keyed by boot, host kernel and QEMU version, one
probe for concurrent processes), GLASSPANE_ACCEL's override, and `host info` saying why."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glasspane.errors import UsageError
from glasspane.hypervisors.accel import (
    CACHE_FILE,
    NO_PAYLOAD,
    boot_verdict,
    machine_key,
    probe_acceleration,
    read_verdict,
)
from glasspane.hypervisors.base import Acceleration
from glasspane.hypervisors.probe_kernel import Payload
from glasspane.settings import Settings
from tests.cli.runner import run_cli

pytestmark = pytest.mark.integration

PROVEN = ("QEMU aborts with KVM", "printed nothing in 15 s under KVM")


def planted(directory: Path, reason: str, **changes: str) -> Acceleration:
    """A verdict written into `directory`'s cache under this machine's key (with `changes`):
    a probe that returns it has read the cache instead of booting anything."""
    key = {**machine_key("/dev/kvm"), **changes}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CACHE_FILE).write_text(json.dumps({"key": key, "kind": "kvm",
                                                    "reason": reason}))
    return Acceleration("kvm", reason)


def test_a_guest_kernel_that_prints_means_kvm(qemu: str, payload: Payload,
                                              tmp_path: Path) -> None:
    # The verdict follows the guest's console, not QEMU starting: TCG stands in for a KVM
    # that runs guests (none here), and a payload that is no kernel stays silent.  Emulation
    # on a loaded machine may take far longer than KVM's 15 s to print: the stand-in gets
    # room (the verdict comes at the first line, however soon).
    verdict = boot_verdict(qemu, payload, ("-accel", "tcg"), timeout=600)
    assert verdict.kind == "kvm", verdict.reason
    assert "printed its first console line under KVM" in verdict.reason
    assert payload.label in verdict.reason and str(payload.kernel) not in verdict.reason
    junk = Payload(tmp_path / "junk", "a file of zeros")
    junk.kernel.write_bytes(bytes(1 << 20))
    silent = boot_verdict(qemu, junk, ("-accel", "tcg"), timeout=5)
    assert silent.kind == "tcg" and "a file of zeros" in silent.reason


def test_this_machine_is_tcg_because_kvm_runs_no_guest(qemu: str, payload: Payload,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/sys/module/kvm_pvm").is_dir():
        pytest.skip("this machine's /dev/kvm is not kvm_pvm")
    # QEMU starts on kvm_pvm without `-cpu host` (with it, some of these machines abort):
    # the guest's kernel then prints nothing, and the verdict says so.
    silent = boot_verdict(qemu, payload, ("-accel", "kvm"))
    assert silent.kind == "tcg"
    assert "printed nothing in 15 s under KVM" in silent.reason
    assert "kvm_pvm" in silent.reason and payload.label in silent.reason
    # The probe itself boots the payload as the VMs would run, and decides TCG on proof.
    monkeypatch.setenv("GLASSPANE_PROBE_KERNEL", str(payload.kernel))
    verdict = probe_acceleration(tmp_path)
    assert verdict.kind == "tcg" and any(p in verdict.reason for p in PROVEN), verdict.reason
    assert read_verdict(tmp_path, machine_key("/dev/kvm")) == verdict


def test_no_payload_means_tcg_and_is_not_kept(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))  # no kernel, no image
    monkeypatch.delenv("GLASSPANE_PROBE_KERNEL", raising=False)
    verdict = probe_acceleration(tmp_path / "cache", fetch=False)
    assert verdict == Acceleration("tcg", NO_PAYLOAD)
    # Kept, it would outlive the kernel `make setup` fetches next.
    assert not (tmp_path / "cache" / CACHE_FILE).exists()
    monkeypatch.setenv("GLASSPANE_PROBE_KERNEL", str(tmp_path / "nothing-here"))
    with pytest.raises(UsageError, match="GLASSPANE_PROBE_KERNEL names no file"):
        probe_acceleration(tmp_path / "cache")


def test_no_kvm_device_means_tcg(tmp_path: Path) -> None:
    verdict = probe_acceleration(tmp_path, kvm_device="/nonexistent/kvm")
    assert verdict.kind == "tcg" and "/nonexistent/kvm does not exist" in verdict.reason


@pytest.mark.parametrize("value", ["tcg", "KVM"])
def test_glasspane_accel_overrides_the_probe(value: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSPANE_ACCEL", value)
    verdict = probe_acceleration(tmp_path)
    assert verdict == Acceleration(value.lower(),
                                   f"set by GLASSPANE_ACCEL={value.lower()} (not probed)")
    assert not list(tmp_path.iterdir())  # nothing probed, nothing kept


def test_host_info_says_the_override_and_refuses_a_bad_one(
        capsys: pytest.CaptureFixture[str], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSPANE_ACCEL", "tcg")
    r = run_cli(capsys, "host", "info")
    assert r.code == 0, r.err
    assert "tcg: set by GLASSPANE_ACCEL=tcg (not probed)" in r.out
    monkeypatch.setenv("GLASSPANE_ACCEL", "fast")
    r = run_cli(capsys, "host", "info")
    assert r.code == 2 and r.out == ""
    assert r.err.strip() == ("glasspane: error: GLASSPANE_ACCEL='fast' is neither kvm nor tcg "
                             "(set it to kvm or tcg, or unset it to let glasspane probe)")


def test_the_verdict_is_kept_per_boot_host_kernel_and_qemu(tmp_path: Path) -> None:
    mine = planted(tmp_path, "planted for this machine")
    assert probe_acceleration(tmp_path) == mine  # read, not probed
    current = machine_key("/dev/kvm")
    for field in ("boot_id", "kernel_release", "qemu"):
        planted(tmp_path, "planted for another machine", **{field: "another"})
        assert read_verdict(tmp_path, current) is None, field
    # A verdict of another boot is probed again, and the new one kept under this boot's key.
    verdict = probe_acceleration(tmp_path)
    assert verdict.reason != "planted for another machine"
    assert json.loads((tmp_path / CACHE_FILE).read_text())["key"] == current


def test_the_verdict_lives_in_the_machines_cache(capsys: pytest.CaptureFixture[str],
                                                 settings: Settings, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests point GLASSPANE_CACHE_DIR at their own directory: the verdict, a fact about the
    # machine, is still read from (and kept in) the user's cache, so none probes again.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    planted(tmp_path / "xdg" / "glasspane", "kept for the whole machine")
    r = run_cli(capsys, "host", "info", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["acceleration"] == {"kind": "kvm",
                                                 "reason": "kept for the whole machine"}
    assert not (settings.cache_dir / CACHE_FILE).exists()


def _blocked_on_a_lock(pid: int) -> bool:
    return any(line.split()[1] == "->" and str(pid) in line.split()
               for line in Path("/proc/locks").read_text().splitlines())


def test_concurrent_processes_probe_once(tmp_path: Path) -> None:
    """A process that finds no verdict waits for the one probing, then takes its verdict
    rather than probing again."""
    tmp_path.mkdir(exist_ok=True)
    with (tmp_path / "acceleration.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a process in the middle of its probe
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; from pathlib import Path; "
             "from glasspane.hypervisors.accel import probe_acceleration as p; "
             "v = p(Path(sys.argv[1])); print(v.kind, v.reason)", str(tmp_path)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ":".join(
                sys.path)})
        deadline = time.monotonic() + 60
        while not _blocked_on_a_lock(child.pid):
            assert child.poll() is None, "the second process did not wait for the lock"
            assert time.monotonic() < deadline, "the second process never reached the lock"
            time.sleep(0.05)
        planted(tmp_path, "the first process's verdict")
    out, _ = child.communicate(timeout=60)
    assert out.strip() == "kvm the first process's verdict"
