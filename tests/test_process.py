"""process.py is the one way glasspane runs programs: no other module starts one, and its three
failures (missing, non-zero, past its deadline) come out as the project's errors, here shown
with real programs."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from glasspane.errors import CommandFailed, CommandTimedOut, ProgramMissing
from glasspane.process import PIPE, call, require, run, spawn

SRC = Path(__file__).resolve().parent.parent / "src" / "glasspane"
# Ways to start a program that bypass process.py.
STARTERS = {"Popen", "create_subprocess_exec", "create_subprocess_shell", "system", "popen",
            "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
            "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp",
            "spawnlpe", "posix_spawn", "posix_spawnp", "fork"}


def _bypasses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names
                      if a.name.split(".")[0] in ("subprocess", "pty")]
        elif isinstance(node, ast.ImportFrom) and node.module in ("subprocess", "pty"):
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "asyncio"):
            found += [f"from {node.module} import {a.name}" for a in node.names
                      if a.name in STARTERS]
        elif isinstance(node, ast.Attribute) and node.attr in STARTERS and isinstance(
                node.value, ast.Name) and node.value.id in ("os", "asyncio", "subprocess"):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_only_process_py_starts_programs() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "process.py":
            continue
        for what in _bypasses(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.relative_to(SRC)}: {what}")
    assert not offenders, "start programs through glasspane.process:\n" + "\n".join(offenders)


def test_the_check_sees_a_bypass() -> None:
    # So that the test above cannot pass by seeing nothing.
    code = ("import subprocess\nimport asyncio, os\nasyncio.create_subprocess_exec('x')\n"
            "os.execvp('x', ['x'])\nfrom os import system\n")
    assert sorted(_bypasses(ast.parse(code))) == [
        "asyncio.create_subprocess_exec", "from os import system", "import subprocess",
        "os.execvp"]


def test_a_missing_program_names_it_and_its_package() -> None:
    with pytest.raises(ProgramMissing) as missing:
        run(["glasspane-no-such-program"], "trying", timeout=10)
    assert "glasspane-no-such-program is not installed" in str(missing.value)
    assert missing.value.hint and "install" in missing.value.hint
    assert isinstance(missing.value.__cause__, FileNotFoundError)
    with pytest.raises(ProgramMissing, match=r"ssh-keygen-nope is not installed \(install "
                                             r"Debian's openssh-client\)"):
        require("ssh-keygen-nope", "openssh-client")
    with pytest.raises(ProgramMissing, match="install Debian's qemu-utils"):
        spawn(["/nonexistent/qemu-img"], "trying", timeout=10)


def test_a_non_zero_exit_names_program_status_and_the_end_of_stderr() -> None:
    with pytest.raises(CommandFailed) as failing:
        run(["false"], "checking", timeout=10)
    assert failing.value.status == 1
    assert str(failing.value) == "checking: `false` exited with status 1"
    script = ("for i in 1 2 3 4 5; do echo line $i >&2; done; "
              "echo 'token hunter2 refused' >&2; exit 3")
    with pytest.raises(CommandFailed) as failing:
        run(["/bin/sh", "-c", script], "logging in", timeout=10, secrets=["hunter2"])
    message = str(failing.value)
    assert message.startswith("logging in: `sh` exited with status 3: ")
    assert "line 4 | line 5 | token [redacted] refused" in message
    assert "hunter2" not in message and "line 1" not in message
    assert "/bin/" not in message  # the program's name, not the server's path to it
    # call() leaves the status to the caller.
    assert call(["false"], "checking", timeout=10).returncode == 1


def test_a_program_past_its_deadline_is_killed_and_named() -> None:
    began = time.monotonic()
    with pytest.raises(CommandTimedOut) as late:
        run(["sleep", "30"], "waiting", timeout=0.5)
    assert time.monotonic() - began < 10
    assert str(late.value) == "waiting: `sleep` did not finish within 0.5 s"
    assert late.value.timeout == 0.5
    assert late.value.__cause__ is not None


def test_a_streaming_program_is_killed_at_its_deadline() -> None:
    began = time.monotonic()
    with spawn(["sh", "-c", "echo started; exec sleep 30"], "streaming", timeout=0.5,
               stdout=PIPE) as running:
        assert running.stdout is not None
        assert running.stdout.readline() == b"started\n"
        assert running.stdout.read() == b""  # ends when the deadline kills it
        with pytest.raises(CommandTimedOut, match=r"`sh` did not finish within 0\.5 s: so far"):
            running.finish(b"so far")
    assert time.monotonic() - began < 10


def test_a_streaming_program_never_outlives_its_block() -> None:
    with spawn(["sleep", "30"], "waiting", timeout=None) as running:
        assert running.poll() is None
    assert running.returncode is not None
    with spawn(["true"], "finishing", timeout=10) as running:
        assert running.finish() == 0


def test_a_shell_string_is_refused() -> None:
    with pytest.raises(TypeError, match="argument lists"):
        run("echo hi", "echoing", timeout=10)  # type: ignore[arg-type]


def test_the_log_names_the_program_never_its_arguments(caplog: pytest.LogCaptureFixture) -> None:
    """A user's command line (vm exec) may hold a secret: INFO logs carry the program only."""
    import logging
    with caplog.at_level(logging.INFO, logger="glasspane.process"):
        run(["echo", "hunter2-secret"], "echoing", timeout=30)
    assert "echo" in caplog.text and "hunter2-secret" not in caplog.text
