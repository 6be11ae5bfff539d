"""Does KVM really run guests here, or must VMs run under TCG emulation?

/dev/kvm existing proves little, nor does QEMU starting on it: on some virtual machines it is a
paravirtual device (kvm_pvm) on which QEMU aborts with `-cpu host` ("failed to set MSR ..."),
or on which QEMU starts and a stock guest kernel then prints nothing at all.  So KVM is chosen
only after a guest has been seen running under it: the probe boots a Debian kernel (the payload,
probe_kernel.py) with KVM as the VMs would run, and waits for its first console line.  Without a
payload the verdict is TCG, never KVM unproven.

The verdict is a fact about the machine, not about one glasspane: it is cached in the user's
own cache (whatever GLASSPANE_CACHE_DIR says) keyed by the boot, the host kernel and QEMU's
version, written atomically under a file lock so that concurrent processes probe once.
GLASSPANE_ACCEL=kvm|tcg overrides it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from glasspane.errors import CommandFailed, UsageError
from glasspane.hypervisors.base import Acceleration
from glasspane.hypervisors.probe_kernel import Payload, fetch_kernel, find_payload
from glasspane.process import call, spawn
from glasspane.settings import machine_cache_dir

ENV_ACCEL = "GLASSPANE_ACCEL"
QEMU = "qemu-system-x86_64"
# As a VM runs under KVM (libvirt_domain.py: host-passthrough).
KVM_ARGS = ("-accel", "kvm", "-cpu", "host")
BOOT_TIMEOUT_SECONDS = 15.0
FIRST_LINE = b"Linux version"
CACHE_FILE = "acceleration.json"
NO_PAYLOAD = "no payload to prove KVM"


def accel_override() -> Acceleration | None:
    """GLASSPANE_ACCEL's verdict, None when unset; UsageError for anything but kvm or tcg."""
    value = os.environ.get(ENV_ACCEL, "").strip()
    if not value:
        return None
    if value.lower() not in ("kvm", "tcg"):
        raise UsageError(f"{ENV_ACCEL}={value[:40]!r} is neither kvm nor tcg",
                         hint="set it to kvm or tcg, or unset it to let glasspane probe")
    return Acceleration(value.lower(), f"set by {ENV_ACCEL}={value.lower()} (not probed)")


def probe_acceleration(cache_dir: Path | None = None, *, kvm_device: str = "/dev/kvm",
                       payload_dirs: tuple[Path, ...] = (), fetch: bool = True
                       ) -> Acceleration:
    """The acceleration VMs should use on this machine, with the reason.

    `cache_dir` holds the verdict (default: the machine's cache); `payload_dirs` are further
    caches to look for a payload in (a glasspane's own); with none found and `fetch`, one is
    fetched from Debian's registry.  Raises UsageError for a bad GLASSPANE_ACCEL or
    GLASSPANE_PROBE_KERNEL."""
    override = accel_override()
    if override:
        return override
    directory = cache_dir or machine_cache_dir()
    key = machine_key(kvm_device)
    cached = read_verdict(directory, key)
    if cached:
        return cached
    with _locked(directory) as locked:
        cached = read_verdict(directory, key) if locked else None
        if cached:  # another process probed while this one waited for the lock
            return cached
        verdict = _probe(kvm_device, payload_dirs, fetch)
        if locked and verdict.reason != NO_PAYLOAD:  # a payload may come: then probe again
            _write_verdict(directory, key, verdict)
        return verdict


def machine_key(kvm_device: str) -> dict[str, str]:
    """What the verdict depends on: this boot, the host kernel, QEMU's version, the device."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = "unknown"
    return {"boot_id": boot_id, "kernel_release": os.uname().release,
            "qemu": _qemu_version(shutil.which(QEMU)), "device": kvm_device}


_versions: dict[tuple[str, int, int], str] = {}


def _qemu_version(qemu: str | None) -> str:
    if qemu is None:
        return "none"
    stat = os.stat(qemu)
    memo = (qemu, stat.st_mtime_ns, stat.st_size)  # asked once per process and binary
    if memo not in _versions:
        try:
            out = call([qemu, "--version"], "asking QEMU its version", timeout=30
                       ).stdout.decode(errors="replace")
        except CommandFailed:
            out = ""
        _versions[memo] = (out.splitlines() or ["unknown"])[0]
    return _versions[memo]


def read_verdict(directory: Path, key: dict[str, str]) -> Acceleration | None:
    """The cached verdict if it was made under `key`."""
    try:
        data = json.loads((directory / CACHE_FILE).read_text())
        if data.get("key") == key:
            return Acceleration(str(data["kind"]), str(data["reason"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def _write_verdict(directory: Path, key: dict[str, str], verdict: Acceleration) -> None:
    text = json.dumps({"key": key, "kind": verdict.kind, "reason": verdict.reason}, indent=2)
    with contextlib.suppress(OSError):  # an unwritable cache only costs a later probe
        with tempfile.NamedTemporaryFile("w", dir=directory, prefix=".acceleration-",
                                         delete=False) as tmp:
            tmp.write(text)
        os.replace(tmp.name, directory / CACHE_FILE)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[bool]:
    """Hold the probe's lock (True), or go without when the cache is unwritable (False)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = (directory / "acceleration.lock").open("a")
    except OSError:
        yield False
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes
        yield True


def _probe(kvm_device: str, payload_dirs: tuple[Path, ...], fetch: bool) -> Acceleration:
    if not os.path.exists(kvm_device):
        return Acceleration("tcg", f"{kvm_device} does not exist")
    if not os.access(kvm_device, os.R_OK | os.W_OK):
        return Acceleration("tcg", f"{kvm_device} is not readable and writable by this user")
    qemu = shutil.which(QEMU)
    if qemu is None:
        return Acceleration("tcg", f"{QEMU} is not installed")
    payload = find_payload(payload_dirs)
    if payload is None and fetch:
        with contextlib.suppress(CommandFailed):  # no registry: the verdict says why
            payload = fetch_kernel()
    if payload is None:
        return Acceleration("tcg", NO_PAYLOAD)
    return boot_verdict(qemu, payload)


def boot_verdict(qemu: str, payload: Payload, accel_args: Sequence[str] = KVM_ARGS,
                 timeout: float = BOOT_TIMEOUT_SECONDS) -> Acceleration:
    """Boot `payload` with `accel_args` and judge by its console: "kvm" once the kernel's
    first line appears, "tcg" when QEMU aborts or the kernel stays silent for `timeout` s."""
    started = time.monotonic()
    spoke, failure = _boot(qemu, payload.kernel, accel_args, timeout)
    if spoke:
        return Acceleration("kvm", f"a guest kernel ({payload.label}) printed its first "
                                   f"console line under KVM in "
                                   f"{time.monotonic() - started:.1f} s")
    if failure:
        pvm = " (/dev/kvm is kvm_pvm, a paravirtual device)" if _is_pvm() else ""
        return Acceleration("tcg", f"QEMU aborts with KVM: {failure}{pvm}")
    return Acceleration("tcg", f"a guest kernel ({payload.label}) printed nothing in "
                               f"{timeout:.0f} s under KVM ({_device_guess()})")


def _is_pvm() -> bool:
    return Path("/sys/module/kvm_pvm").is_dir()


def _device_guess() -> str:
    if _is_pvm():
        return "/dev/kvm is kvm_pvm, a paravirtual device"
    return "/dev/kvm is paravirtual, such as kvm_pvm?"


def _boot(qemu: str, kernel: Path, accel_args: Sequence[str], timeout: float
          ) -> tuple[bool, str | None]:
    """(the kernel's first line appeared, QEMU's first error line if it ended before)."""
    args = [qemu, *accel_args, "-m", "256", "-nodefaults", "-display", "none", "-monitor",
            "none", "-serial", "stdio", "-kernel", str(kernel), "-append",
            "console=ttyS0 panic=-1", "-no-reboot"]
    # Its own deadline below judges the verdict; spawn's, later, is only a backstop.
    with spawn(args, "probing KVM", timeout=timeout + 30) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.fileno()
        seen = b""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if select.select([out], [], [], min(left, 0.5))[0]:
                chunk = os.read(out, 65536)
                if not chunk:  # QEMU has ended without the kernel's line
                    status = proc.finish()
                    return False, _first_error(proc.stderr.read().decode(errors="replace"),
                                               status)
                seen += chunk
                if FIRST_LINE in seen:
                    return True, None
                seen = seen[-len(FIRST_LINE):]  # the line may straddle two reads
        return False, None


def _first_error(stderr: str, status: int) -> str:
    lines = [line.removeprefix(f"{QEMU}: ") for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("warning:")]
    return (errors or lines or [f"exit status {status}"])[0].removeprefix("error: ")
