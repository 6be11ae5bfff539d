"""Template specs: every mistake reported with its file, line and key before anything boots."""

from __future__ import annotations

from pathlib import Path

import pytest

from glasspane.errors import UsageError
from glasspane.templates.spec import parse_spec, parse_vars, select_outputs
from tests.cli.runner import run_cli

GOOD = """\
name: web-base
variables:
  motd: hello
source:
  image: disk.qcow2
resources: {cpus: 2, memory: 1024, disk: 4}
provisioners:
  - shell:
      inline: ["echo ${motd} > /etc/motd"]
  - file: {source: files, destination: /opt/files}
  - ansible: {playbook: site.yml, extra_vars: {port: 8080}}
outputs:
  - {format: xva, vm_name: web, vcpus: 2, memory: 1024}
  - {format: vhd, compress: bz2}
  - {format: qcow2, compress: true}
  - {format: ova}
  - {format: raw}
"""


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "disk.qcow2").write_bytes(b"")
    (tmp_path / "files").mkdir()
    (tmp_path / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    return tmp_path


def write(spec_dir: Path, text: str) -> Path:
    path = spec_dir / "template.yaml"
    path.write_text(text)
    return path


def test_a_good_spec(spec_dir: Path) -> None:
    spec = parse_spec(write(spec_dir, GOOD), {"motd": "hi there"})
    assert spec.name == "web-base"
    assert spec.resources.disk_gib == 4 and spec.resources.memory_mib == 1024
    assert [p.kind for p in spec.provisioners] == ["shell", "file", "ansible"]
    assert spec.provisioners[0].inline == ("echo hi there > /etc/motd",)
    assert spec.provisioners[2].extra_vars == {"port": 8080}
    assert [o.filename("web-base") for o in spec.outputs] == [
        "web-base.xva", "web-base.vhd.bz2", "web-base.qcow2", "web-base.ova", "web-base.raw"]
    assert spec.generalize
    assert [o.name for o in select_outputs(spec, ["vhd", "raw"])] == ["vhd", "raw"]
    other = parse_spec(spec.path, {"motd": "another"})
    assert other.digest != spec.digest, "the variables are part of the spec's identity"


@pytest.mark.parametrize(("change", "expected"), [
    (("  - {format: raw}\n", "  - {format: raw, colour: red}\n"),
     "line 17: outputs[4].colour: unknown key"),
    (("resources: {cpus: 2,", "resources: {cpus: two,"),
     "line 6: resources.cpus: expected a whole number, found 'two'"),
    (("resources: {cpus: 2,", "resources: {cpus: 999,"),
     "resources.cpus: 999 is out of range (1..64)"),
    (("  image: disk.qcow2\n", "  image: missing.qcow2\n"),
     "line 5: source.image: no such file:"),
    (("source:\n  image: disk.qcow2\n", ""), "missing required key 'source'"),
    (("${motd}", "${nope}"), "line 9: provisioners[0].shell.inline[0]: undefined variable ${nope}"),
    (("  - {format: raw}\n", "  - {format: vmdk}\n"),
     "outputs[4].format: expected one of xva, vhd, qcow2, ova, raw, found 'vmdk'"),
    (("  - {format: raw}\n", "  - {format: qcow2}\n"), "two outputs are named 'qcow2'"),
    (("compress: bz2", "compress: gzip"), "outputs[1].compress: expected bz2 or false"),
    (("  - ansible:", "  - puppet:"), "provisioners[2].puppet: unknown provisioner"),
    (("destination: /opt/files", "destination: opt/files"),
     "provisioners[1].file.destination: expected an absolute path in the VM"),
    (("name: web-base", "name: Web Base"), "line 1: name: invalid template name"),
    (("name: web-base", "name: web-base\nflavour: x"), "line 2: flavour: unknown key"),
])
def test_mistakes_name_their_place(spec_dir: Path, change: tuple[str, str],
                                   expected: str) -> None:
    assert change[0] in GOOD
    path = write(spec_dir, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(UsageError) as caught:
        parse_spec(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_vars_and_only_are_checked(spec_dir: Path) -> None:
    path = write(spec_dir, GOOD)
    with pytest.raises(UsageError, match="declares no variable 'colour'"):
        parse_spec(path, {"colour": "red"})
    with pytest.raises(UsageError, match="expected NAME=VALUE"):
        parse_vars(["novalue"])
    with pytest.raises(UsageError, match=r"--only vmdk: .* has no such output"):
        select_outputs(parse_spec(path), ["vmdk"])


def test_an_alias_bomb_is_refused(spec_dir: Path) -> None:
    path = write(spec_dir, 'a: &a ["x", "x"]\nb: &b [*a, *a]\nname: x\n')
    with pytest.raises(UsageError, match="aliases"):
        parse_spec(path)


def test_validate_command(spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(spec_dir, GOOD)
    result = run_cli(capsys, "template", "validate", str(path), "--var", "motd=x")
    assert result.code == 0, result.err
    assert "template web-base" in result.out and "web-base.vhd.bz2" in result.out
    bad = write(spec_dir, GOOD.replace("{cpus: 2,", "{cpus: -1,"))
    result = run_cli(capsys, "template", "validate", str(bad))
    assert result.code == 2
    assert "line 6: resources.cpus" in result.err


def test_the_example_spec_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "web-template" / "template.yaml"
    image = tmp_path / "web.tar"
    image.write_bytes(b"")
    spec = parse_spec(example, {"app_image": str(image)})
    assert spec.source.suite == "bookworm"
    assert {o.format for o in spec.outputs} == {"xva", "vhd", "qcow2"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("text", "problem"), [
    ("name: " + "[" * 5000 + "]" * 5000 + "\n", "line 1: lists and mappings nested more than 64"),
    ("name: x\nsource:\n" + "".join("  " * i + " k:\n" for i in range(1, 200)),
     "nested more than 64 deep"),
    ("name: " + "1" * 5000 + "\n", "line 1: a number of 5000 characters (at most 40)"),
    ("name: 0x" + "f" * 100_000 + "\n", "a number of 100002 characters"),
    ("name: " + ":".join(["59"] * 50_000) + "\n", "a number of 149999 characters"),
    ("name: " + "9" * 500 + ".5e+1\n", "a number of 505 characters"),
])
def test_yaml_bounded_in_depth_and_numbers(spec_dir: Path, text: str, problem: str) -> None:
    """PyYAML composes recursively (a RecursionError, a 500 on a server) and reads numbers of
    any length, in base 16 or 60 (the latter quadratic in the digits)."""
    with pytest.raises(UsageError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(write(spec_dir, text))


def test_variables_expand_within_bounds(spec_dir: Path) -> None:
    value = "v" * 200_000
    text = GOOD.replace("motd: hello", f"motd: {value}").replace(
        'inline: ["echo ${motd} > /etc/motd"]', "inline: [\"" + "${motd}" * 100 + "\"]")
    with pytest.raises(UsageError, match=r"line \d+: provisioners\[0\].shell.inline\[0\]: "
                                         "variables expand to more than 4194304 bytes"):
        parse_spec(write(spec_dir, text))
