"""The pane at scale: a synthetic inventory of 1,000 hosts, 20,000 VMs and 100,000 containers
in SQLite, served by `glasspane serve`'s application in its own process.

- listing with filters and paging under 32 concurrent clients (wrk, on loopback): latency
  percentiles, target p99 under 50 ms; with the listing cache off (every request reads the
  database), then as served: a first run in which each of the 1,200 distinct pages is read
  from the database once, and a second, steady, run;
- the page's first screen of the tree in Chromium after a reload: target under 300 ms;
- 200 SSE clients, each of which must receive every one of 50 events (25 users with 8
  streams each: one user may keep `streams_per_user` streams open).

    .venv/bin/python benchmarks/pane.py [--duration 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select

from glasspane.api.limits import ServerLimits
from glasspane.inventory.db import Database
from glasspane.inventory.models import Container, Host, Vm, sort_key
from glasspane.inventory.users import add_user, get_user, issue_token
from glasspane.settings import Settings

HOSTS, VMS_PER_HOST, CONTAINERS_PER_VM = 1000, 20, 5
STATES = ["running"] * 8 + ["halted", "paused"]
CONTAINER_STATES = ["running"] * 8 + ["exited", "paused"]
SSE_CLIENTS, SSE_EVENTS = 200, 50
# One user may keep ServerLimits.streams_per_user (8) live streams: 200 streams need 25 users.
SSE_USERS = -(-SSE_CLIENTS // ServerLimits().streams_per_user)
PASSWORD = "bench-password"

SERVER = """
import sys, uvicorn
from glasspane.api.app import create_app
from glasspane.inventory.db import Database
from glasspane.settings import Settings
settings = Settings.load()
app = create_app(settings, Database(sys.argv[1]), background=False,
                 cache_listings=sys.argv[3] == "cache")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
            access_log=False)
"""

WRK_SCRIPT = """
local paths = {%s}
local token = "%s"
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Authorization"] = "Bearer " .. token})
end
"""


def populate(database: Database) -> None:
    rng = random.Random(7)
    with database.session() as session:
        session.execute(insert(Host), [
            {"name": f"host-{h:04d}", "uri": f"qemu+ssh://host-{h:04d}/system",
             "driver": "libvirt", "state": "ok", "info": {}} for h in range(HOSTS)])
        host_ids = {name: id_ for name, id_ in session.execute(select(Host.name, Host.id))}
        session.execute(insert(Vm), [
            {"host_id": host_ids[f"host-{h:04d}"], "name": f"vm-{h:04d}-{v:02d}",
             "sort_key": sort_key(f"host-{h:04d}", f"vm-{h:04d}-{v:02d}"),
             "uuid": f"{h:08d}-{v:04d}", "power_state": rng.choice(STATES),
             "addresses": [f"10.{h // 256}.{h % 256}.{v + 10}"], "labels": {}}
            for h in range(HOSTS) for v in range(VMS_PER_HOST)])
        vms = list(session.execute(select(Vm.id, Vm.sort_key)))
        rows = [{"vm_id": vm_id, "engine_id": f"{vm_id:06x}{c:06x}", "name": f"app-{c}",
                 "sort_key": sort_key(vm_key, f"app-{c}"),
                 "image": f"registry.local/app-{c}:1", "state": rng.choice(CONTAINER_STATES),
                 "status": "", "ports": [], "created": ""}
                for vm_id, vm_key in vms for c in range(CONTAINERS_PER_VM)]
        for start in range(0, len(rows), 20_000):
            session.execute(insert(Container), rows[start:start + 20_000])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def run_wrk(url: str, token: str, duration: int, work: Path) -> dict[str, float]:
    rng = random.Random(11)
    paths = []
    for _ in range(200):
        h, v = rng.randrange(HOSTS), rng.randrange(VMS_PER_HOST)
        paths += [f"/api/v1/vms?host=host-{h:04d}&limit=50",
                  f"/api/v1/vms?state=running&limit=50&offset={rng.randrange(15000)}",
                  f"/api/v1/containers?host=host-{h:04d}&vm=vm-{h:04d}-{v:02d}",
                  f"/api/v1/containers?state=exited&limit=50&offset={rng.randrange(9000)}",
                  f"/api/v1/hosts?limit=100&offset={rng.randrange(900)}",
                  f"/api/v1/vms?q=-{h:04d}-&limit=50"]
    script = work / "paths.lua"
    script.write_text(WRK_SCRIPT % (", ".join(json.dumps(p) for p in paths), token))
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-s",
                          str(script), url], capture_output=True, text=True, check=True).stdout
    print(out)
    found = {}
    for label in ("50%", "90%", "99%"):
        match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match:
            factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]
            found[label] = float(match[1]) * factor
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    found["requests/s"] = float(rate[1]) if rate else 0.0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    found["non-2xx"] = float(errors[1]) if errors else 0.0
    return found


def first_screen(url: str) -> float:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + "/")
        page.fill("input[name=name]", "bench")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector('.node[data-kind="host"]')
        times = []
        for _ in range(5):
            started = time.perf_counter()
            page.reload()
            page.wait_for_selector('.node[data-key="host:host-0000"]')
            times.append(time.perf_counter() - started)
        page.click('.node[data-key="host:host-0000"]')
        page.wait_for_selector('.node[data-kind="vm"]')
        browser.close()
    return min(times)


async def sse_fanout(url: str, token: str, listeners_tokens: list[str]) -> tuple[int, int]:
    """(clients that received every event, events sent): client i listens as user
    i % len(listeners_tokens), so no user holds more streams than one user may."""
    headers = {"Authorization": f"Bearer {token}"}
    received = [0] * SSE_CLIENTS
    ready = asyncio.Event()
    connected = 0
    limits = httpx.Limits(max_connections=SSE_CLIENTS + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def listen(index: int) -> None:
            nonlocal connected
            own = {"Authorization": f"Bearer {listeners_tokens[index % len(listeners_tokens)]}"}
            async with client.stream("GET", "/api/v1/events", headers=own) as response:
                assert response.status_code == 200, response.status_code
                connected += 1
                if connected == SSE_CLIENTS:
                    ready.set()
                async for line in response.aiter_lines():
                    if line.startswith("event: task.created"):
                        received[index] += 1
                        if received[index] == SSE_EVENTS:
                            return

        listeners = [asyncio.create_task(listen(i)) for i in range(SSE_CLIENTS)]
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(1)
        for i in range(SSE_EVENTS):
            response = await client.post(f"/api/v1/vms/host-0001/vm-0001-{i % 20:02d}/"
                                         "actions/reboot", headers=headers)
            if response.status_code == 409:  # that VM is not running: another event kind
                response = await client.post(f"/api/v1/vms/host-0001/vm-0001-{i % 20:02d}"
                                             "/snapshots", headers=headers,
                                             json={"name": f"s{i}"})
            assert response.status_code == 202, response.text
        _, pending = await asyncio.wait(listeners, timeout=60)
        for task in pending:
            task.cancel()
    return sum(1 for n in received if n == SSE_EVENTS), SSE_EVENTS


@contextmanager
def serving(url_db: str, cache: bool) -> Iterator[str]:
    """`glasspane serve`'s application in its own process; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-c", SERVER, url_db, str(port),
                               "cache" if cache else "nocache"])
    try:
        wait_up(url)
        yield url
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `make bench-pane` installs Debian's wrk")
    work = Path(tempfile.mkdtemp(prefix="gp-pane-bench-"))
    os.environ.update(GLASSPANE_CONFIG_DIR=str(work / "config"),
                      GLASSPANE_DATA_DIR=str(work / "data"))
    url_db = f"sqlite:///{work / 'inventory.db'}"
    database = Database.open(Settings.load(), url_db)
    started = time.perf_counter()
    populate(database)
    with database.session() as session:
        add_user(session, "bench", PASSWORD, "operator")
        token = issue_token(session, get_user(session, "bench"), "bench")
        listeners = []
        for n in range(SSE_USERS):
            add_user(session, f"sse-{n:02d}", PASSWORD, "viewer")
            listeners.append(issue_token(session, get_user(session, f"sse-{n:02d}"), "bench"))
    print(f"inventory: {HOSTS} hosts, {HOSTS * VMS_PER_HOST} VMs, "
          f"{HOSTS * VMS_PER_HOST * CONTAINERS_PER_VM} containers "
          f"({time.perf_counter() - started:.1f} s to write)")
    try:
        # First every request from the database (the listing cache off), then as served.
        with serving(url_db, cache=False) as url:
            uncached = run_wrk(url, token, args.duration, work)
        with serving(url_db, cache=True) as url:
            first_sight = run_wrk(url, token, args.duration, work)  # every page new once
            latency = run_wrk(url, token, args.duration, work)      # then as it stays
            screen = first_screen(url)
            complete, events = asyncio.run(sse_fanout(url, token, listeners))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nresults")
    for label, numbers in (("listing cache off", uncached),
                           ("as served, each of the 1,200 pages seen the first time",
                            first_sight),
                           ("as served, steady", latency)):
        print(f"  listing, 32 clients, {label}: p50 {numbers.get('50%', 0):.1f} ms, "
              f"p90 {numbers.get('90%', 0):.1f} ms, p99 {numbers.get('99%', 0):.1f} ms "
              f"(target < 50), {numbers['requests/s']:.0f} requests/s, "
              f"{numbers['non-2xx']:.0f} non-2xx")
    print(f"  page, first screen of the tree after a reload: {screen * 1000:.0f} ms "
          "(target < 300)")
    print(f"  SSE: {complete} of {SSE_CLIENTS} clients ({SSE_USERS} users) received all "
          f"{events} events")


if __name__ == "__main__":
    main()
