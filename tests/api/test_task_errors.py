"""A task that fails unexpectedly tells its reader that it failed, not what the server's
exception said: an OSError names the server's files, and every user may read a task."""

from __future__ import annotations

import logging

import pytest

from glasspane.inventory import tasks
from glasspane.inventory.db import Database


def test_an_unexpected_failure_names_no_server_file(database: Database,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    secret_path = "/etc/glasspane-test/host-secrets.json"

    def leaky(_context: tasks.TaskContext) -> None:
        raise FileNotFoundError(2, "No such file or directory", secret_path)
    tasks.HANDLERS["test.leaky"] = leaky
    try:
        task = tasks.submit(database, "test.leaky", "vm", "local/web-1", {}, "otto")
        with caplog.at_level(logging.ERROR, logger="glasspane"):
            tasks.Worker(database, "test").run(task["id"], "test.leaky", {}, "otto")
    finally:
        del tasks.HANDLERS["test.leaky"]
    with database.session() as session:
        from glasspane.inventory.models import Task
        done = session.get(Task, task["id"])
        assert done is not None and done.state == "failed"
        assert done.error is not None and secret_path not in done.error, done.error
        assert "FileNotFoundError" in done.error and f"task {task['id']}" in done.error
    assert secret_path in caplog.text  # the administrator still learns what happened
