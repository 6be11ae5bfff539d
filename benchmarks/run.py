#!/usr/bin/env python3
"""Speed and memory of glasspane's conversions against the peer tools, in the same run.

Usage: python benchmarks/run.py [--size-mib 4096] [--workdir bench-work] [--markdown FILE]

A generated disk (glasspane.images.sample: about 40% data, zero runs and partly-zero MiBs) is
converted by glasspane and by the peer doing the same job; every command runs as a child
process, measured by wall time, CPU time and peak resident memory (wait4's rusage).  Results
are ratios, since these machines are shared: peer time / glasspane time (above 1: glasspane is
faster).  A peer that is not installed is reported as missing, never as a failure.
Peers: qemu-img (Debian's qemu-utils); xva-img (no registry ships it: build it from its source
and put it on PATH or in $XVA_IMG); `cp --sparse=always` as the floor of any raw output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from glasspane.images.sample import write_sample  # noqa: E402


@dataclass
class Run:
    label: str
    seconds: float
    cpu_seconds: float
    peak_mib: float


def measure(label: str, commands: list[list[str]], cwd: Path) -> Run:
    """Run `commands` in sequence (a workflow), summing time and taking the highest peak."""
    wall = cpu = 0.0
    peak = 0
    for cmd in commands:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall += time.perf_counter() - start
        cpu += usage.ru_utime + usage.ru_stime
        peak = max(peak, usage.ru_maxrss)
        if os.waitstatus_to_exitcode(status) != 0:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{err}")
        if proc.stderr:
            proc.stderr.close()
    return Run(label, wall, cpu, peak / 1024)


def clean(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def fresh_start(cleanup: list[Path], inputs: list[Path]) -> None:
    """Once per case: previous outputs gone and the page cache emptied (as root), then the
    inputs read back into it.  A page cache left full by earlier cases makes whoever writes
    next pay for reclaiming it, which swings single runs by 2-3x."""
    clean(cleanup)
    os.sync()
    with contextlib.suppress(OSError):  # not root: the inputs are still warmed below
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    for path in inputs:
        warm(path)


def duel(repeat: int, ours: list[list[str]], peer_label: str, peer: list[list[str]] | None,
         cwd: Path, cleanup: list[Path]) -> tuple[Run, Run | None]:
    """Alternate glasspane and the peer `repeat` times and keep each one's fastest run: on a
    shared machine the minimum is the measurement least disturbed by the neighbours.  One
    untimed run of each first brings programs and libraries back into the page cache."""
    contenders = [ours] + ([peer] if peer is not None else [])
    inputs = sorted({cwd / arg for cmds in contenders for cmd in cmds for arg in cmd
                     if (cwd / arg).is_file()})
    fresh_start(cleanup, inputs)
    for commands in contenders:
        measure("warm-up", commands, cwd)
        clean(cleanup)
    mine: list[Run] = []
    theirs: list[Run] = []
    for _ in range(repeat):
        clean(cleanup)
        mine.append(measure("glasspane", ours, cwd))
        if peer is not None:
            clean(cleanup)
            theirs.append(measure(peer_label, peer, cwd))
    clean(cleanup)
    best = min(mine, key=lambda r: r.seconds)
    return best, (min(theirs, key=lambda r: r.seconds) if theirs else None)


def warm(path: Path) -> None:
    """Read a file once so that every contender starts from the page cache."""
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass


def find_xva_img() -> str | None:
    return os.environ.get("XVA_IMG") or shutil.which("xva-img")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=4096)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench-work")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    glasspane = str(Path(sys.executable).parent / "glasspane")
    qemu_img = shutil.which("qemu-img")
    xva_img = find_xva_img()

    raw = work / "disk.raw"
    print(f"generating a {args.size_mib} MiB sample disk in {work} ...", flush=True)
    write_sample(str(raw), args.size_mib << 20)
    for name, extra in (("disk.xva", []), ("disk-xxhash.xva", ["--xva-checksum", "xxhash"]),
                        ("disk.vhd", [])):
        subprocess.run([glasspane, "image", "convert", "-q", "--force", *extra, str(raw),
                        str(work / name)], check=True)

    def gp(src: str, dst: str) -> list[list[str]]:
        # --no-sync: qemu-img convert's default cache mode ("unsafe") does not fsync either.
        return [[glasspane, "image", "convert", "-q", "--force", "--no-sync", src, dst]]

    rows: list[tuple[str, Run, Run | None, str]] = []
    out = work / "out"
    cases: list[tuple[str, list[list[str]], str, list[list[str]] | None, list[Path]]] = []
    cp_floor = [["cp", "--sparse=always", "disk.raw", "out"]]

    # XVA -> raw, for both checksum kinds (XAPI writes .xxhash since 2019, .checksum before):
    # the tar -x + xva-img workflow, and the floor of a sparse copy of the same data.
    for kind, xva in (("xxhash", "disk-xxhash.xva"), ("SHA-1", "disk.xva")):
        title = f"XVA ({kind}) -> raw"
        xva_peer = None
        if xva_img:
            xva_peer = [["mkdir", "-p", "xva-x"], ["tar", "-xf", xva, "-C", "xva-x"],
                        [xva_img, "-s", "disk-export", "xva-x/Ref:100/", "out"]]
        cases.append((title, gp(xva, "out.raw"), "tar -x + xva-img -s disk-export", xva_peer,
                      [out, work / "out.raw", work / "xva-x"]))
        cases.append((title, gp(xva, "out.raw"), "cp --sparse=always (floor)", cp_floor,
                      [out, work / "out.raw"]))
    if qemu_img:
        cases.append(("raw -> dynamic VHD", gp("disk.raw", "out.vhd"),
                      "qemu-img convert -O vpc",
                      [[qemu_img, "convert", "-f", "raw", "-O", "vpc", "-o",
                        "subformat=dynamic", "disk.raw", "out"]], [out, work / "out.vhd"]))
        cases.append(("VHD -> raw", gp("disk.vhd", "out.raw"), "qemu-img convert -f vpc",
                      [[qemu_img, "convert", "-f", "vpc", "-O", "raw", "disk.vhd", "out"]],
                      [out, work / "out.raw"]))
        cases.append(("raw -> qcow2", gp("disk.raw", "out.qcow2"), "qemu-img convert -O qcow2",
                      [[qemu_img, "convert", "-f", "raw", "-O", "qcow2", "disk.raw", "out"]],
                      [out, work / "out.qcow2"]))
    else:
        print("peer missing: qemu-img (install Debian's qemu-utils)")
    raw_to_xva_peer = None
    if xva_img:
        raw_to_xva_peer = [["mkdir", "-p", "xva-p/Ref:100"],
                           [xva_img, "disk-import", "xva-p/Ref:100/", "disk.raw"],
                           ["tar", "-xf", "disk.xva", "-C", "xva-p", "ova.xml"],
                           [xva_img, "package", "out", "xva-p/ova.xml", "xva-p/Ref:100/"]]
    cases.append(("raw -> XVA", gp("disk.raw", "out.xva"), "xva-img disk-import + package",
                  raw_to_xva_peer, [out, work / "out.xva", work / "xva-p"]))

    for title, ours, peer_label, peer, cleanup in cases:
        print(f"measuring {title} ...", flush=True)
        mine, theirs = duel(args.repeat, ours, peer_label, peer, work, cleanup)
        rows.append((title, mine, theirs, peer_label))

    table = render(rows, args.size_mib)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


def render(rows: list[tuple[str, Run, Run | None, str]], size_mib: int) -> str:
    lines = [f"Disk: {size_mib} MiB generated sample (about 40% data). Fastest of the "
             "alternated runs. Ratio = peer time / glasspane time (above 1: glasspane is "
             "faster). CPU = CPU time / wall time (above 1: more than one core at work).",
             "",
             "| conversion | glasspane s | glasspane peak MiB | glasspane CPU | peer | peer s "
             "| peer peak MiB | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for title, mine, theirs, peer_label in rows:
        cpu = f"{mine.cpu_seconds / mine.seconds:.2f}" if mine.seconds else "-"
        if theirs is None:
            lines.append(f"| {title} | {mine.seconds:.2f} | {mine.peak_mib:.0f} | {cpu} | "
                         f"{peer_label}: missing | - | - | - |")
        else:
            lines.append(f"| {title} | {mine.seconds:.2f} | {mine.peak_mib:.0f} | {cpu} | "
                         f"{peer_label} | {theirs.seconds:.2f} | {theirs.peak_mib:.0f} | "
                         f"{theirs.seconds / mine.seconds:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
