"""Playbooks sent to the server never run with the server's privileges: plays aimed at the
server and ansible_* extra variables are refused with a 400 naming them; what does run, runs
in the sandbox (a real bwrap run through the API's task, against a XenServer pool from the
loopback XAPI) and sees none of the server's files; and an address a guest reports enters
the inventory only if it is an IP address."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from glasspane.inventory.sync import sync_hosts
from glasspane.settings import Settings
from tests.api.conftest import login
from tests.cli.runner import run_cli
from tests.hypervisors.conftest import guest_world
from tests.xapi.conftest import POOL_PASSWORD as PASSWORD
from tests.xapi.conftest import password_file, xapi
from tests.xapi.server import Running

__all__ = ["password_file", "xapi"]  # the loopback pool's fixtures, used here too

API = "/api/v1"


@pytest.fixture
def pool(xapi: Running, password_file: Path, settings: Settings,
         capsys: pytest.CaptureFixture[str]) -> Running:
    """The pool registered with the server: its password is now in the database, and the
    key that decrypts it in the config directory."""
    added = run_cli(capsys, "host", "add", "xcp", xapi.url, "--driver", "xenapi",
                    "--user", "root", "--password-file", str(password_file))
    assert added.code == 0, added.err
    password_file.unlink()
    assert (settings.config_dir / "host-secrets.key").exists()
    return xapi


def configure(client: TestClient, user: str, playbook: str, **body: Any) -> Any:
    return client.post(f"{API}/vms/configure", headers=login(client, user),
                       json={"vms": ["web-1"], "playbook": playbook, **body})


def run_tasks(app: FastAPI) -> None:
    while (claimed := app.state.worker.claim()) is not None:
        app.state.worker.run(*claimed)


SERVER_PLAYS = {
    "hosts: localhost": ("- hosts: localhost\n  tasks:\n    - ansible.builtin.command: id\n",
                         "play 1: hosts 'localhost' is the server itself"),
    "hosts: 127.0.0.1 in a list": ("- hosts: [web-1, 127.0.0.1]\n  tasks: []\n",
                                   "hosts '127.0.0.1' is the server itself"),
    "hosts: ::1": ("- hosts: '::1'\n  tasks: []\n", "hosts '::1' is the server itself"),
    "a templated hosts": ("- hosts: \"{{ target }}\"\n  tasks: []\n", "is a template"),
    "connection: local": ("- hosts: all\n  connection: local\n  tasks: []\n",
                          "connection 'local' is refused"),
    "ansible_connection in play vars": (
        "- hosts: all\n  vars: {ansible_connection: local}\n  tasks: []\n",
        "ansible_connection is refused"),
    "delegate_to: localhost": (
        "- hosts: all\n  tasks:\n    - name: on the server\n      ansible.builtin.command: id\n"
        "      delegate_to: localhost\n", "play 1 tasks[0]: delegate_to 'localhost' runs on"),
    "local_action in a block": (
        "- hosts: all\n  tasks:\n    - block:\n        - local_action: {module: command, "
        "cmd: id}\n", "local_action runs on the server"),
}


@pytest.mark.parametrize("case", sorted(SERVER_PLAYS))
def test_a_play_on_the_server_is_refused(case: str, client: TestClient) -> None:
    playbook, said = SERVER_PLAYS[case]
    refused = configure(client, "otto", playbook)
    assert refused.status_code == 400, refused.text
    assert said in refused.json()["detail"] and "playbook.yml" in refused.json()["detail"]
    assert client.get(f"{API}/tasks", headers=login(client, "otto")).json()["items"] == []


def test_ansible_extra_variables_are_refused(client: TestClient) -> None:
    playbook = "- hosts: all\n  gather_facts: false\n  tasks: []\n"
    for name in ("ansible_connection", "ansible_host", "ANSIBLE_ssh_common_args"):
        refused = configure(client, "ada", playbook, extra_vars={"port": 80, name: "local"})
        assert refused.status_code == 400, refused.text
        assert f"extra variable '{name}' is refused" in refused.json()["detail"]
    assert client.get(f"{API}/tasks", headers=login(client, "ada")).json()["items"] == []


def test_a_playbook_runs_in_the_sandbox_and_sees_none_of_the_servers_files(
        app: FastAPI, client: TestClient, settings: Settings, pool: Running,
        database: Any) -> None:
    """Lookups run on the controller: a playbook aimed at a VM reads, through them, what
    ansible-playbook may read.  In the sandbox that is neither the key of the pool's
    password in the config directory, nor glasspane's key, nor the inventory database, and
    it is not root."""
    sync_hosts(database, settings)
    secrets = settings.config_dir / "host-secrets.key"
    key = settings.config_dir / "ssh" / "id_ed25519"
    playbook = f"""\
- hosts: all
  gather_facts: false
  tasks:
    - name: the pool's password
      ansible.builtin.debug: {{msg: "{{{{ lookup('file', '{secrets}') }}}}"}}
      ignore_errors: true
    - name: glasspane's key, through a shell
      ansible.builtin.debug: {{msg: "key [{{{{ lookup('pipe', 'cat {key} 2>&1; true') }}}}]"}}
    - name: who runs this
      ansible.builtin.debug: {{msg: "uid [{{{{ lookup('pipe', 'id -u') }}}}]"}}
    - name: what the data directory holds
      ansible.builtin.debug:
        msg: "data [{{{{ lookup('pipe', 'ls -A {settings.data_dir} 2>&1; true') }}}}]"
    - name: the server's processes
      ansible.builtin.debug: {{msg: "pids [{{{{ lookup('pipe', 'ls /proc | grep -c ^[0-9]') }}}}]"}}
"""
    accepted = configure(client, "otto", playbook, extra_vars={"word": "x"})
    assert accepted.status_code == 202, accepted.text
    run_tasks(app)
    task = client.get(f"{API}/tasks/{accepted.json()['id']}", headers=login(client, "otto"))
    done = task.json()
    assert done["state"] == "succeeded", done["error"]
    output = done["result"]["output"]
    assert "Unable to access the file" in output  # the lookup ran, and found nothing
    assert PASSWORD not in task.text
    assert (settings.config_dir / "host-secrets.key").read_text().strip() not in task.text
    assert "PRIVATE KEY" not in task.text and "key [cat: " in output
    uid = output.split("uid [", 1)[1].split("]", 1)[0]
    assert uid != str(os.getuid()) and int(uid) > 0
    assert "data []" in output or "No such file" in output.split("data [", 1)[1][:200]
    assert int(output.split("pids [", 1)[1].split("]", 1)[0]) < 10  # its own, not ours
    assert "web-1" in done["result"]["recap"] and "failed=0" in done["result"]["recap"]


def test_an_address_holding_a_template_never_reaches_the_inventory(
        app: FastAPI, client: TestClient, settings: Settings, pool: Running,
        database: Any, tmp_path: Path) -> None:
    """XenServer's guest metrics are written by the guest: a value that is not an IP address
    is not an address, whatever it holds (here, a command for the server to run)."""
    marker = tmp_path / "ran-on-the-server"
    hostile = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    xapi = pool.xapi
    web = next(r for r, v in xapi.objects["VM"].items() if v["name_label"] == "web-1")
    metrics = xapi.objects["VM"][web]["guest_metrics"]
    xapi.objects["VM_guest_metrics"][metrics]["networks"] = {
        "0/ip": hostile, "0/ipv4/1": "10.0.1.21 -oProxyCommand=x", "1/ip": "10.0.1.22",
        "0/ipv6/0": f"fe80::1%{hostile}"}
    sync_hosts(database, settings)
    operator = login(client, "otto")
    listed = client.get(f"{API}/vms/xcp/web-1", headers=operator).json()
    assert listed["addresses"] == ["10.0.1.22"]

    xapi.objects["VM_guest_metrics"][metrics]["networks"] = {"0/ip": hostile}
    sync_hosts(database, settings)
    assert client.get(f"{API}/vms/xcp/web-1", headers=operator).json()["addresses"] == []
    accepted = configure(client, "otto", "- hosts: all\n  gather_facts: false\n  tasks:\n"
                         "    - ansible.builtin.debug: {msg: '{{ ansible_host }}'}\n")
    assert accepted.status_code == 202, accepted.text
    run_tasks(app)
    done = client.get(f"{API}/tasks/{accepted.json()['id']}", headers=operator).json()
    assert done["state"] == "failed"
    assert "no running VM named 'web-1' with an address" in done["error"]
    assert not marker.exists()


@pytest.mark.integration
def test_the_dynamic_inventory_gives_what_the_hypervisor_says_as_text(
        pool: Running, settings: Settings, tmp_path: Path) -> None:
    """`glasspane-inventory` (the user's own Ansible runs): a VM name written on the pool
    reaches a playbook as text; Ansible does not evaluate the template in it."""
    import subprocess
    import sys
    marker = tmp_path / "ran-on-the-controller"
    xapi = pool.xapi
    web = next(r for r, v in xapi.objects["VM"].items() if v["name_label"] == "web-1")
    name = f"web-{{{{ lookup('pipe', 'touch {marker}') }}}}"
    xapi.objects["VM"][web]["name_label"] = name
    playbook = tmp_path / "show.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                        "    - ansible.builtin.debug: {msg: '[{{ glasspane_vm }}]'}\n")
    programs = Path(sys.executable).parent
    shown = subprocess.run([str(programs / "ansible-playbook"), "-i",
                            str(programs / "glasspane-inventory"), str(playbook)],
                           capture_output=True, text=True, timeout=300, check=False)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"[{name}]" in shown.stdout
    assert not marker.exists()


GUEST = "as-vm"


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """One real Debian VM (from the machine's cached image, under TCG) and its address."""
    from glasspane.vms.service import VmRequest, create_vm
    base = tmp_path_factory.mktemp("ansible-sandbox")
    with guest_world(base, "gp-as", (GUEST,)) as settings:
        created = create_vm(settings, VmRequest(GUEST, "deb", memory_mib=640))
        yield settings, created.addresses[0]


@pytest.mark.integration
def test_a_configure_task_reaches_a_real_vm_from_the_sandbox(
        guest: tuple[Settings, str], tmp_path: Path) -> None:
    """The whole way: the API's task runs ansible-playbook in the sandbox, which logs in to
    the VM through the run's agent (the key itself is not there), becomes root in it, and
    writes what the caller sent, as text."""
    import subprocess

    from glasspane.api.app import create_app
    from glasspane.inventory.db import Database
    from glasspane.inventory.users import add_user
    settings, address = guest
    database = Database.open(settings, f"sqlite:///{tmp_path / 'inventory.db'}")
    with database.session() as session:
        add_user(session, "otto", "operator-password", "operator")
    app = create_app(settings, database, background=False)
    word = "{{ lookup('pipe', 'id') }}"
    playbook = """\
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: what the caller sent, and who ran the controller
      ansible.builtin.copy:
        dest: /etc/from-the-sandbox
        content: "{{ word }} / controller uid {{ lookup('pipe', 'id -u') }}\\n"
        mode: "0644"
"""
    try:
        with TestClient(app) as client:
            accepted = configure(client, "otto", playbook, vms=[GUEST],
                                 extra_vars={"word": word})
            assert accepted.status_code == 202, accepted.text
            run_tasks(app)
            done = client.get(f"{API}/tasks/{accepted.json()['id']}",
                              headers=login(client, "otto")).json()
        assert done["state"] == "succeeded", done["error"]
        assert "changed=1" in done["result"]["recap"]
    finally:
        database.close()
    key = settings.config_dir / "ssh" / "id_ed25519"
    written = subprocess.run(
        ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o",
         "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
         f"debian@{address}", "cat /etc/from-the-sandbox"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    caller, _, uid = written.strip().partition(" / controller uid ")
    assert caller == word
    assert uid != str(os.getuid())
