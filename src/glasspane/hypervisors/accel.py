"""Does KVM really run guests here, or must VMs run under TCG emulation?

/dev/kvm existing proves little: on some virtual machines it is a paravirtual device on which
QEMU aborts with `-cpu host` ("failed to set MSR ..."), or on which a stock guest kernel spins
silently.  So the probe starts QEMU with KVM, and when a probe kernel is at hand boots it and
waits for its first console line.  The verdict is cached per boot of the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from glasspane.hypervisors.base import Acceleration

QEMU = "qemu-system-x86_64"
START_GRACE_SECONDS = 3.0
BOOT_TIMEOUT_SECONDS = 15.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def probe_acceleration(cache_dir: Path | None = None, *, kvm_device: str = "/dev/kvm",
                       kernel: Path | None = None) -> Acceleration:
    """The acceleration VMs should use on this machine, with the reason."""
    cache = cache_dir / "acceleration.json" if cache_dir else None
    if cache and cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data.get("boot_id") == _boot_id() and data.get("kernel") == str(kernel):
                return Acceleration(data["kind"], data["reason"])
        except (OSError, ValueError, KeyError):
            pass
    verdict = _probe(kvm_device, kernel)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"boot_id": _boot_id(), "kernel": str(kernel),
                                     "kind": verdict.kind, "reason": verdict.reason}))
    return verdict


def _probe(kvm_device: str, kernel: Path | None) -> Acceleration:
    if not os.path.exists(kvm_device):
        return Acceleration("tcg", f"{kvm_device} does not exist")
    if not os.access(kvm_device, os.R_OK | os.W_OK):
        return Acceleration("tcg", f"{kvm_device} is not readable and writable by this user")
    qemu = shutil.which(QEMU)
    if qemu is None:
        return Acceleration("tcg", f"{QEMU} is not installed")
    failure = _qemu_starts(qemu)
    if failure:
        return Acceleration("tcg", f"QEMU aborts with KVM: {failure}")
    if kernel is None or not kernel.is_file():
        return Acceleration("kvm", "QEMU starts with KVM (no probe kernel to boot yet)")
    if _kernel_speaks(qemu, kernel):
        return Acceleration("kvm", "a guest kernel boots under KVM")
    return Acceleration("tcg", f"a guest kernel printed nothing in {BOOT_TIMEOUT_SECONDS:.0f} s "
                               "under KVM (paravirtual /dev/kvm?)")


def _qemu_starts(qemu: str) -> str | None:
    """None when QEMU with KVM stays up for the grace period, else its first error line."""
    proc = subprocess.Popen(
        [qemu, "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-nodefaults",
         "-display", "none", "-monitor", "none", "-serial", "none", "-S"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=START_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    lines = [line.removeprefix("qemu-system-x86_64: ").removeprefix("error: ")
             for line in err.splitlines() if line]
    return lines[0] if lines else f"exit status {proc.returncode}"


def _kernel_speaks(qemu: str, kernel: Path) -> bool:
    proc = subprocess.Popen(
        [qemu, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display", "none",
         "-serial", "stdio", "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1",
         "-no-reboot"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            chunk = proc.stdout.read(4096)
            if chunk and chunk.strip():
                return True
            time.sleep(0.2)
        return False
    finally:
        proc.kill()
        proc.wait()
