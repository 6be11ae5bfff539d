"""The playbook runner and its checks, with real ansible-playbook runs (and real bwrap for
the sandbox) against a VM address nobody answers on: the tasks here run on the controller
(debug), which is the point, since lookups and templates run there."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from glasspane.errors import GuestError, Unavailable, UsageError
from glasspane.guests.ansible import run_playbook
from glasspane.guests.ansible_checks import check_extra_vars, check_playbook
from glasspane.guests.ansible_files import known_host_lines
from glasspane.guests.keys import management_key
from glasspane.guests.sandbox import Sandbox
from glasspane.guests.ssh import SshTarget
from glasspane.settings import Settings

ADDRESS = "192.0.2.10"  # TEST-NET-1: never answers


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(tmp_path / "config", tmp_path / "data", tmp_path / "cache",
                    tmp_path / "run", sandbox_playbooks=True)


@pytest.fixture
def temporary(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory of the test's own for the runs (crossable by the sandbox's
    user, as /tmp is), to see that they leave nothing there."""
    directory = Path(tempfile.mkdtemp(prefix="gp-runs-"))
    directory.chmod(0o711)
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    yield directory
    shutil.rmtree(directory)


def target(settings: Settings, address: str = ADDRESS, host: str = "local") -> SshTarget:
    return SshTarget(host, "web-1", "0b7c-uuid", address, "debian", management_key(settings),
                     settings.data_dir / "ssh_known_hosts")


@pytest.mark.parametrize("playbook", [
    "- hosts: all\n  tasks: []\n",
    "- hosts: 'all:!localhost'\n  tasks: []\n",
    "- hosts: [web-1, label_app_web]\n  connection: ssh\n  tasks:\n"
    "    - ansible.builtin.command: id\n      delegate_to: \"{{ groups.db[0] }}\"\n",
    "- hosts: all\n  vars:\n    token: !unsafe '{{ not a template }}'\n    pw: !vault |\n"
    "      $ANSIBLE_VAULT;1.1;AES256\n      3131\n  tasks: []\n",
])
def test_playbooks_for_the_vms_pass(playbook: str) -> None:
    check_playbook(playbook, "site.yml")


def test_a_playbook_of_aliases_is_checked_once_per_node() -> None:
    # Each level refers to the one before ten times: walked naively, 10^12 nodes.
    levels = ["a0: &a0 {connection: ssh}"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 13)]
    check_playbook("- hosts: all\n  vars:\n" + "".join(f"    {line}\n" for line in levels),
                   "bomb.yml")


def test_checks_name_the_problem() -> None:
    with pytest.raises(UsageError, match=r"broken\.yml is not valid YAML at line 3"):
        check_playbook("- hosts: all\n  tasks: [\n", "broken.yml")
    with pytest.raises(UsageError, match="play 2: hosts 'LOCALHOST' is the server itself"):
        check_playbook("- hosts: all\n- hosts: web-1,LOCALHOST\n", "two.yml")
    with pytest.raises(UsageError, match="extra variable '1x' is not a variable name"):
        check_extra_vars({"1x": 1})


@pytest.mark.integration
def test_values_are_text_to_ansible_never_templates(settings: Settings, tmp_path: Path
                                                    ) -> None:
    """Locally (the CLI's run, no sandbox): an extra variable and an inventory value that
    hold a template are printed as written; the template does not run."""
    marker = tmp_path / "ran"
    hostile = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    playbook = tmp_path / "play.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin."
                        "debug: {msg: '[{{ word }}] [{{ glasspane_host }}]'}\n")
    output = bytearray()
    run = run_playbook(playbook, [("web-1", target(settings, host=hostile))], output.extend,
                       extra_vars={"word": hostile, "nested": {"list": [hostile]}})
    assert run.status == 0, output.decode()
    assert f"[{hostile}] [{hostile}]" in output.decode()
    assert not marker.exists()


@pytest.mark.integration
def test_what_cannot_be_an_inventory_is_refused_before_running(settings: Settings,
                                                                tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text("- hosts: all\n  tasks: []\n")
    for name in ("localhost", "{{ x }}", "a,b"):
        with pytest.raises(UsageError, match="cannot be a name in Ansible's inventory"):
            run_playbook(playbook, [(name, target(settings))], print)
    with pytest.raises(GuestError, match="is not an IP address"):
        run_playbook(playbook, [("web-1", target(settings, "10.0.0.1 -oProxyCommand=x"))],
                     print)
    with pytest.raises(GuestError, match="address ::1 is this machine's own"):
        run_playbook(playbook, [("web-1", target(settings, "::1"))], print)
    with pytest.raises(UsageError, match="extra variable 'ansible_host' is refused"):
        run_playbook(playbook, [("web-1", target(settings))], print,
                     extra_vars={"ansible_host": "127.0.0.1"})


@pytest.mark.integration
def test_without_bwrap_the_server_runs_no_playbook(settings: Settings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   temporary: Path) -> None:
    marker = tmp_path / "ran"
    playbook = tmp_path / "play.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                        f"    - ansible.builtin.debug: {{msg: \"{{{{ lookup('pipe', "
                        f"'touch {marker}') }}}}\"}}\n")
    sandbox, vm = Sandbox.for_settings(settings), target(settings)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(Unavailable, match="bwrap is not installed") as refused:
        run_playbook(playbook, [("web-1", vm)], print, sandbox=sandbox)
    assert "apt-get install bubblewrap" in str(refused.value)
    assert not marker.exists()
    assert list(temporary.iterdir()) == []


@pytest.mark.integration
def test_a_sandboxed_run_cannot_write_outside_and_leaves_nothing(
        settings: Settings, tmp_path: Path, temporary: Path) -> None:
    """The run's own directory is the only writable place besides tmpfs; a known host key
    of the target goes in, and nothing of the run stays behind."""
    alias_line = "glasspane-0b7c-uuid ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n"
    other_line = "glasspane-other ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther\n"
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "ssh_known_hosts").write_text(other_line + alias_line)
    outside = Path("/var/tmp") / f"glasspane-sandbox-test-{os.getpid()}"
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        f"    - ansible.builtin.debug: {{msg: \"[{{{{ lookup('pipe', 'touch {outside} "
        f"{settings.config_dir}/x 2>&1; cat ../ssh/known_hosts; ls ../ssh; ssh-add -l; "
        f"ssh-add -L; true') }}}}]\"}}\n")
    vm = target(settings)
    public = vm.identity.with_name(vm.identity.name + ".pub").read_text().split()[1]
    output = bytearray()
    run = run_playbook(playbook, [("web-1", vm)], output.extend,
                       sandbox=Sandbox.for_settings(settings))
    text = output.decode()
    assert run.status == 0, text
    assert not outside.exists() and not (settings.config_dir / "x").exists()
    assert alias_line.strip() in text and "glasspane-other" not in text
    # The key is in the agent (the run may use it) and only its public half in the run.
    assert "id-0.pub" in text and "PRIVATE KEY" not in text and public in text
    assert "(ED25519)" in text  # ssh-add -l: the agent answers the sandbox
    assert list(temporary.iterdir()) == []


def test_known_host_lines_plain_and_hashed(tmp_path: Path) -> None:
    import base64
    import hashlib
    import hmac
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, b"glasspane-u1", hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    store = tmp_path / "known_hosts"
    store.write_text(f"{hashed} ssh-ed25519 AAAA1\nglasspane-u2 ssh-ed25519 AAAA2\n"
                     "glasspane-u1x ssh-ed25519 AAAA3\n|1|bad|base64! ssh-ed25519 AAAA4\n")
    assert known_host_lines(store, ["glasspane-u1"]) == f"{hashed} ssh-ed25519 AAAA1\n"
    assert known_host_lines(store, ["glasspane-u2", "nothing"]) == \
        "glasspane-u2 ssh-ed25519 AAAA2\n"
    assert known_host_lines(tmp_path / "absent", ["glasspane-u1"]) == ""
