"""A real template build under TCG: the test guest image booted as a build VM, provisioned by
a shell step, a file and an Ansible playbook, generalized, exported to every format (each
checked by qemu-img where it reads the format, and by the toolkit), registered, and a VM made
from it; then the Ansible inventory and `vm configure` against that VM; and the failures a
build must survive without leaving anything behind."""

from __future__ import annotations

import bz2
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from glasspane.guests.debian_image import debian_image
from glasspane.images.check import check_image
from glasspane.images.compare import compare_images
from glasspane.settings import Settings
from tests.cli.runner import run_cli
from tests.hypervisors.conftest import URI, guest_world

pytestmark = pytest.mark.integration
NAME = "tb-web"
VM = "tb-vm"
PLAYBOOK = """\
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: leave a mark
      ansible.builtin.copy: {dest: /etc/ansible-marker, content: "{{ word }}\\n", mode: "0644"}
"""


@dataclass
class Built:
    settings: Settings
    base: Path
    spec: Path
    out: Path
    manifest: dict[str, object]

    def ssh(self, address: str, command: str) -> str:
        key = self.settings.config_dir / "ssh" / "id_ed25519"
        return subprocess.run(
            ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o",
             "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
             f"debian@{address}", command], capture_output=True, text=True, timeout=120,
            check=True).stdout


def write_spec(directory: Path, settings: Settings, provisioners: str,
               outputs: str = "  - {format: qcow2}\n", extra: str = "") -> Path:
    image = debian_image(settings.cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "template.yaml"
    path.write_text(f"""\
name: {NAME}
variables: {{marker: built-by-test, word: from-the-spec}}
source:
  image: {image.disk}
  kernel: {image.kernel}
  initrd: {image.initrd}
resources: {{cpus: 2, memory: 768}}
provisioners:
{provisioners}outputs:
{outputs}{extra}""")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    base = tmp_path_factory.mktemp("template-build")
    with guest_world(base, "gp-tb", (VM,)) as settings:
        (base / "spec").mkdir()
        (base / "spec" / "note.txt").write_text("a file from the build machine\n")
        (base / "spec" / "play.yml").write_text(PLAYBOOK)
        (base / "spec" / "bundle" / "conf").mkdir(parents=True)
        (base / "spec" / "bundle" / "conf" / "app.ini").write_text("[app]\nport = 8080\n")
        spec = write_spec(base / "spec", settings, """\
  - shell:
      inline:
        - echo ${marker} > /etc/glasspane-marker
        - cp /etc/machine-id /etc/build-machine-id
        - echo "shell step ran as $(id -un)"
  - file: {source: note.txt, destination: /opt/gp/note.txt, mode: "0640"}
  - file: {source: bundle, destination: /opt/gp/bundle}
  - ansible: {playbook: play.yml, extra_vars: {word: "${word}"}}
""", """\
  - {format: xva, vm_name: tb-web, vcpus: 2, memory: 768}
  - {format: vhd, compress: bz2}
  - {format: qcow2, compress: true}
  - {format: ova}
  - {format: raw}
""")
        from glasspane.cli.main import main
        out = base / "out"
        try:
            main(["template", "build", str(spec), "--output-dir", str(out), "--quiet"])
        except SystemExit as exc:
            assert exc.code == 0, f"the build failed (status {exc.code})"
        yield Built(settings, base, spec, out,
                    json.loads((out / "manifest.json").read_text()))
        from glasspane.templates.service import remove_template
        shutil.rmtree(out, ignore_errors=True)
        with suppress(Exception):  # the VM's teardown removes what this could not
            remove_template(settings, NAME)


def test_every_output_is_written_verified_and_described(built: Built) -> None:
    manifest = built.manifest
    assert manifest["template"] == NAME
    assert manifest["spec_sha256"] == hashlib.sha256(
        built.spec.read_bytes() + repr(sorted({"marker": "built-by-test",
                                               "word": "from-the-spec"}.items())).encode()
    ).hexdigest()
    outputs = {o["format"]: o for o in manifest["outputs"]}  # type: ignore[attr-defined]
    assert set(outputs) == {"xva", "vhd", "qcow2", "ova", "raw"}
    for output in outputs.values():
        path = built.out / output["file"]
        assert path.stat().st_size == output["file_size"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == output["sha256"]
        assert "content identical to the built disk" in output["verified"]
        assert output["virtual_size"] == 3 << 30
    assert outputs["vhd"]["file"] == f"{NAME}.vhd.bz2"
    assert outputs["vhd"]["register"]["cloudstack"] == {
        "format": "VHD", "hypervisor": "XenServer", "compressed": True}
    assert outputs["xva"]["register"]["xenserver"]["VCPUs_max"] == 2
    assert manifest["boot"]["kernel"] == f"{NAME}.vmlinuz"  # type: ignore[index]
    assert (built.out / f"{NAME}.vmlinuz").is_file()

    raw, qcow2 = built.out / f"{NAME}.raw", built.out / f"{NAME}.qcow2"
    subprocess.run(["qemu-img", "check", "-q", "-f", "qcow2", str(qcow2)], check=True)
    subprocess.run(["qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", str(qcow2),
                    str(raw)], check=True)
    vhd = built.base / "unpacked.vhd"
    with bz2.open(built.out / f"{NAME}.vhd.bz2") as packed, vhd.open("wb") as unpacked:
        shutil.copyfileobj(packed, unpacked, 1 << 20)
    subprocess.run(["qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", str(vhd),
                    str(raw)], check=True)
    vhd.unlink()
    for vm_format in ("xva", "ova"):  # qemu-img reads neither: the toolkit checks them
        path = built.out / f"{NAME}.{vm_format}"
        assert check_image(str(path)).ok
        assert all(r.identical for r in compare_images(str(raw), str(path)))

    log = (built.out / "build.log").read_text()
    for step in ("provisioners[0].shell", "provisioners[1].file", "provisioners[3].ansible",
                 "generalize", "shell step ran as root", "PLAY RECAP"):
        assert step in log
    assert not list(built.out.parent.glob(".out.part-*")), "no staging directory is left"


def test_a_failing_provisioner_leaves_everything_as_it_was(
        built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    before = (built.out / "manifest.json").read_bytes()
    from glasspane.templates.service import list_templates
    template_before = [t for t in list_templates(built.settings) if t.name == NAME]
    spec = write_spec(built.base / "failing", built.settings, """\
  - shell:
      inline: ["echo about to fail", "exit 3"]
""")
    result = run_cli(capsys, "template", "build", str(spec), "--output-dir", str(built.out),
                     "--quiet")
    assert result.code == 8, result.err
    assert "build step provisioners[0].shell: exited with status 3" in result.err
    assert "about to fail" in result.err, "the end of the step's output is in the error"
    assert (built.out / "manifest.json").read_bytes() == before
    assert [t for t in list_templates(built.settings) if t.name == NAME] == template_before
    assert not [t for t in list_templates(built.settings) if t.name.startswith("gp-build-")]
    failed_log = built.out.with_name("out.build.log")
    assert "exit 3" in result.err or "about to fail" in failed_log.read_text()
    assert not _build_vms()
    assert not list(built.out.parent.glob(".out.part-*"))


def test_a_vm_from_the_template_shows_the_build_and_is_a_new_machine(
        built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "vm", "create", VM, "--template", NAME, "--memory", "640",
                     "--label", "app=web", "--label", "tier=front")
    assert result.code == 0, result.err
    address = result.out.split(": ")[1].split()[0]
    assert built.ssh(address, "cat /etc/glasspane-marker").strip() == "built-by-test"
    assert built.ssh(address, "cat /etc/ansible-marker").strip() == "from-the-spec"
    assert built.ssh(address, "sudo stat -c '%a %s' /opt/gp/note.txt").split() == ["640", "30"]
    # Directories made on the way are the usual 0755: any user may read what was uploaded.
    assert built.ssh(address, "stat -c %a /opt/gp").strip() == "755"
    assert "port = 8080" in built.ssh(address, "cat /opt/gp/bundle/conf/app.ini")
    machine_id = built.ssh(address, "cat /etc/machine-id").strip()
    assert len(machine_id) == 32
    assert machine_id != built.ssh(address, "cat /etc/build-machine-id").strip()
    listed = run_cli(capsys, "vm", "list", "--json")
    row = next(r for r in json.loads(listed.out) if r["name"] == VM)
    assert row["labels"] == {"app": "web", "tier": "front"} and row["template"] == NAME


def test_the_ansible_inventory_reaches_the_vm(built: Built, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    script = shutil.which("glasspane-inventory") or str(
        Path(__import__("sys").executable).parent / "glasspane-inventory")
    ansible = Path(script).parent
    listed = json.loads(subprocess.run(
        [str(ansible / "ansible-inventory"), "-i", script, "--list"], capture_output=True,
        text=True, check=True, timeout=120).stdout)
    assert VM in listed["label_app_web"]["hosts"]
    assert VM in listed["label_tier_front"]["hosts"]
    assert VM in listed["host_local"]["hosts"]
    assert VM in listed[f"template_{NAME.replace('-', '_')}"]["hosts"]
    assert listed["_meta"]["hostvars"][VM]["ansible_user"] == "debian"

    ping = tmp_path / "ping.yml"
    ping.write_text("- hosts: label_app_web\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.ping:\n")
    run = subprocess.run([str(ansible / "ansible-playbook"), "-i", script, str(ping)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{VM}" in run.stdout and "ok=1" in run.stdout

    play = tmp_path / "configure.yml"
    play.write_text(PLAYBOOK)
    result = run_cli(capsys, "vm", "configure", "--label", "app=web", str(play),
                     "-e", "word=configured")
    assert result.code == 0, result.err
    assert f"configured {VM}" in result.out
    address = listed["_meta"]["hostvars"][VM]["ansible_host"]
    assert built.ssh(address, "cat /etc/ansible-marker").strip() == "configured"
    result = run_cli(capsys, "vm", "configure", "--label", "app=nothing", str(play))
    assert result.code == 6 and "no running VM carries label 'app=nothing'" in result.err
    failing = tmp_path / "fail.yml"
    failing.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                       "    - ansible.builtin.command: /bin/false\n")
    result = run_cli(capsys, "vm", "configure", VM, str(failing), "--quiet")
    assert result.code == 7 and "failed=1" in result.err


def test_a_template_in_use_is_not_rebuilt(built: Built,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "template", "build", str(built.spec), "--output-dir",
                     str(built.base / "again"), "--quiet")
    assert result.code == 2
    assert f"template '{NAME}' on host local is in use by VM {VM}" in result.err
    assert not (built.base / "again").exists()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Settings]:
    with guest_world(tmp_path, "gp-tb", ()) as settings:
        yield settings


def test_a_build_vm_that_never_answers(world: Settings, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "blank" / "blank.raw"
    blank.parent.mkdir()
    with blank.open("wb") as disk:
        disk.truncate(64 << 20)
    spec = blank.parent / "template.yaml"
    spec.write_text(f"name: tb-blank\nsource: {{image: {blank}}}\nbuild: {{ssh_timeout: 30}}\n"
                    "outputs: [{format: raw}]\n")
    result = run_cli(capsys, "template", "build", str(spec), "--output-dir",
                     str(blank.parent / "out"), "--quiet")
    assert result.code == 8, result.err
    assert "build step boot: the build VM did not become reachable" in result.err
    assert not (blank.parent / "out").exists()
    assert not _build_vms()
    from glasspane.templates.service import list_templates
    assert not [t for t in list_templates(world) if t.name.startswith("gp-build-")]


def _build_vms() -> list[str]:
    conn = libvirt.open(URI)
    try:
        return [d.name() for d in conn.listAllDomains() if d.name().startswith("gp-build-")]
    finally:
        conn.close()


def test_configure_as_a_server_task(built: Built, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`vm configure --server`: the playbook travels in the request, runs as the server's
    task with progress, and its recap is kept as the task's result."""
    from glasspane.api.app import create_app
    from glasspane.inventory.db import Database
    from glasspane.inventory.users import add_user, issue_token
    from tests.api.conftest import serve
    database = Database.open(built.settings, f"sqlite:///{tmp_path / 'inventory.db'}")
    with database.session() as session:
        token = issue_token(session, add_user(session, "olga", "a long passphrase 1", "operator"),
                            "test")
    monkeypatch.setenv("GLASSPANE_TOKEN", token)
    server = serve(create_app(built.settings, database, sync_interval=1))
    try:
        play = tmp_path / "remote.yml"
        play.write_text(PLAYBOOK)
        result = run_cli(capsys, "--server", server.url, "vm", "configure", VM, str(play),
                         "-e", "word=through-the-server")
        assert result.code == 0, result.err
        assert "ok=1" in result.out and f"configured {VM} (task " in result.out
        task_id = result.out.rsplit("(task ", 1)[1].split(")")[0]
        shown = run_cli(capsys, "--server", server.url, "task", "show", task_id)
        task = json.loads(shown.out)
        assert task["kind"] == "vm.configure" and task["state"] == "succeeded"
        assert "PLAY RECAP" not in task["result"]["recap"] and "ok=1" in task["result"]["recap"]
        address = json.loads(run_cli(capsys, "inventory", "--host", VM).out)["ansible_host"]
        assert built.ssh(address, "cat /etc/ansible-marker").strip() == "through-the-server"
    finally:
        server.stop()
        database.close()
