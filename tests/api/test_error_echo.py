"""A request the schema refuses (422) is answered with where and why, never with what the
request held there: a host's password, an Ansible run's extra variables or a command's
arguments would otherwise come back in the error body (and so into whatever logs or shows
error bodies on the way: a proxy, a browser's console, a CI log of the remote CLI)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from glasspane.inventory.db import Database
from tests.api.conftest import login
from tests.api.test_api import add_vm

API = "/api/v1"
SECRET = "hunter2-s3cret"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_422_names_the_problem_without_echoing_the_request(
        client: TestClient, database: Database) -> None:
    add_vm(database, "web-1", "running")
    ada, otto = login(client, "ada"), login(client, "otto")
    cases: list[tuple[str, str, dict[str, str], Any, str]] = [
        # A host without its URI: the whole body (its password with it) is the "input".
        ("POST", "/hosts", ada, {"name": "x1", "password": SECRET}, "uri"),
        # A catalogue operation's own check (vms or label) sees the whole command.
        ("POST", "/vms/configure", otto,
         {"playbook": "- hosts: all", "extra_vars": {"token": SECRET}}, "name at least"),
        # An argument too long: the argument itself.
        ("POST", "/vms/local/web-1/exec", otto,
         {"command": ["sh", "-c", SECRET * 5000]}, "at most"),
    ]
    for method, path, who, body, said in cases:
        response = client.request(method, API + path, headers=who, json=body)
        assert response.status_code == 422, (path, response.text)
        assert said in response.text, (path, response.text)
        assert SECRET not in response.text, (path, response.text)
        for issue in response.json()["detail"]:
            assert {"loc", "msg", "type"} <= issue.keys()
