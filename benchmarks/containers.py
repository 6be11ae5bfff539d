"""Container listing across VMs: parallel versus one VM, kept connections versus the first call,
and glasspane versus the shell loop an administrator would write (`ssh VM sudo podman ps`).

Creates N VMs (default 8) from the Debian template on the local host, runs one container in
each, measures, and removes everything.  Ratios, not absolute times: the machine is shared
and its guests run under TCG.

    .venv/bin/python benchmarks/containers.py [--vms 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import libvirt

from glasspane.containers import deploy, service, sessions
from glasspane.containers.sample_image import write_image_tarball
from glasspane.guests.ssh import stop_masters
from glasspane.settings import Settings


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def cold(settings: Settings) -> None:
    """Forget every kept connection: the next call pays for SSH, the probe and the relay."""
    sessions.close_all()
    stop_masters(settings.runtime_dir)


def peer_ps(settings: Settings, address: str) -> None:
    key = settings.config_dir / "ssh" / "id_ed25519"
    subprocess.run(["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                    "-o", "LogLevel=ERROR", f"debian@{address}",
                    "sudo podman ps -a --format json"], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gp-bench-"))
    storage = f"gp-bench-{uuid.uuid4().hex[:6]}"
    os.environ.update(GLASSPANE_CONFIG_DIR=str(work / "config"),
                      GLASSPANE_DATA_DIR=str(work / "data"),
                      GLASSPANE_RUNTIME_DIR=str(work / "rt"),
                      GLASSPANE_TEMPLATE_STORAGE=storage,
                      GLASSPANE_VM_STORAGE=storage + "-vms")
    settings = Settings.load()
    names = [f"bench-{i}" for i in range(1, args.vms + 1)]
    from glasspane.templates.service import template_from_debian
    from glasspane.vms.service import VmRequest, create_vms, destroy_vm
    try:
        print(f"creating {args.vms} VMs under TCG (a few minutes)...", flush=True)
        template_from_debian(settings, "deb")
        created = create_vms(settings, [VmRequest(n, "deb", cpus=1) for n in names],
                             timeout=900)
        failed = [r for r in created if isinstance(r, Exception)]
        if failed:
            raise SystemExit(f"VM creation failed: {failed[0]}")
        addresses = {r.name: r.addresses[0] for r in created if not isinstance(r, Exception)}
        image = write_image_tarball(work / "web.tar", "localhost/bench:1")
        for name in names:
            deploy.load_image(settings, "local", name, image)
            deploy.run(settings, "local", name, deploy.RunRequest("localhost/bench:1",
                                                                  name="web"))
        measure(settings, names, addresses, args.rounds)
    finally:
        for name in names:
            with suppress(Exception):
                destroy_vm(settings, name)
        cold(settings)
        conn = libvirt.open("qemu:///system")
        for pool_name in (storage + "-vms", storage):
            with suppress(libvirt.libvirtError):
                pool = conn.storagePoolLookupByName(pool_name)
                pool.refresh(0)
                for vol in pool.listAllVolumes():
                    vol.delete(0)
                pool.destroy()
                pool.undefine()
        conn.close()
        shutil.rmtree(work, ignore_errors=True)


def measure(settings: Settings, names: list[str], addresses: dict[str, str],
            rounds: int) -> None:
    def list_all() -> None:
        listing = service.list_containers(settings)
        assert not listing.failures, listing.failures
        assert len(listing.containers) >= len(names)

    def list_one(name: str) -> Callable[[], object]:
        return lambda: service.list_containers(settings, name)

    results: dict[str, list[float]] = {k: [] for k in (
        "cold one VM (slowest)", "cold all VMs", "warm one VM (slowest)", "warm all VMs",
        "peer: ssh+podman ps, one VM (slowest)", "peer: ssh+podman ps, sequential",
        "peer: ssh+podman ps, parallel")}
    for _ in range(rounds):
        singles = []
        for name in names:
            cold(settings)
            singles.append(timed(list_one(name)))
        results["cold one VM (slowest)"].append(max(singles))
        cold(settings)
        results["cold all VMs"].append(timed(list_all))
        results["warm one VM (slowest)"].append(max(timed(list_one(n)) for n in names))
        results["warm all VMs"].append(timed(list_all))
        peer_singles = [timed(lambda n=n: peer_ps(settings, addresses[n])) for n in names]
        results["peer: ssh+podman ps, one VM (slowest)"].append(max(peer_singles))
        results["peer: ssh+podman ps, sequential"].append(sum(peer_singles))
        with ThreadPoolExecutor(len(names)) as pool:
            results["peer: ssh+podman ps, parallel"].append(
                timed(lambda: list(pool.map(lambda vm: peer_ps(settings, addresses[vm]),
                                            names))))
    best = {k: min(v) for k, v in results.items()}
    print(f"\n{len(names)} VMs, min of {rounds} rounds (seconds; medians in brackets)")
    for key, values in results.items():
        print(f"  {key:<34} {best[key]:7.3f}  [{statistics.median(values):.3f}]")
    print("\nratios")
    print(f"  cold all / cold slowest one      {best['cold all VMs'] / best['cold one VM (slowest)']:.2f}"  # noqa: E501
          "  (target: little more than 1)")
    print(f"  warm all / warm slowest one      {best['warm all VMs'] / best['warm one VM (slowest)']:.2f}")  # noqa: E501
    print(f"  cold all / warm all              {best['cold all VMs'] / best['warm all VMs']:.1f}"
          "  (target: at least 5)")
    print(f"  peer parallel / peer slowest one "
          f"{best['peer: ssh+podman ps, parallel'] / best['peer: ssh+podman ps, one VM (slowest)']:.2f}"  # noqa: E501
          "  (the same machine limit, for comparison)")
    print(f"  peer sequential / warm all       "
          f"{best['peer: ssh+podman ps, sequential'] / best['warm all VMs']:.1f}")
    print(f"  peer parallel / warm all         "
          f"{best['peer: ssh+podman ps, parallel'] / best['warm all VMs']:.1f}")


if __name__ == "__main__":
    main()
