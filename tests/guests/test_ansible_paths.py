"""A playbook named by a path relative to the current directory (as `template build
examples/web-template/template.yaml` names its build.yml) is found, though ansible-playbook
runs in the playbook's own directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from glasspane.guests.ansible import run_playbook

pytestmark = pytest.mark.integration

PLAYBOOK = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.debug: {msg: found and run}
"""


def test_a_relative_playbook_path_is_found(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "build.yml").write_text(PLAYBOOK)
    monkeypatch.chdir(tmp_path)
    output = bytearray()
    run = run_playbook(Path("spec/build.yml"), [], output.extend, timeout=300)
    assert run.status == 0, output.decode()
    assert b"found and run" in output
