"""Spec contexts (what a build or an app deploy sends to a server): the spec's directory
without earlier outputs or hidden files, files outside it refused; and unpacking on the
server refuses whatever is not a plain file or directory inside the destination."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from glasspane.build_context import context_files, pack_context, unpack_context
from glasspane.errors import ImageError, LimitExceeded, UsageError
from glasspane.templates.spec import parse_spec
from tests.templates.test_spec import GOOD, spec_dir, write  # noqa: F401 - the fixture


def test_pack_and_unpack(spec_dir: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
                         ) -> None:
    (spec_dir / "files" / "index.html").write_text("hello")
    (spec_dir / "output-web-base").mkdir()
    (spec_dir / "output-web-base" / "web-base.qcow2").write_bytes(b"old build")
    (spec_dir / "output-web-base.build.log").write_text("log")
    (spec_dir / ".git").mkdir()
    (spec_dir / ".git" / "config").write_text("x")
    spec = parse_spec(write(spec_dir, GOOD))
    assert [str(p) for p in context_files(spec.path, spec.files())] == [
        "disk.qcow2", "files/index.html", "site.yml", "template.yaml"]
    archive = tmp_path_factory.mktemp("ctx") / "context.tar"
    assert pack_context(spec.path, spec.files(), archive) > 0
    target = tmp_path_factory.mktemp("unpacked")
    unpack_context(archive, target, 1 << 20)
    assert (target / "files" / "index.html").read_text() == "hello"
    assert parse_spec(target / "template.yaml").name == "web-base"
    with pytest.raises(ImageError, match="over 10 bytes unpacked"):
        unpack_context(archive, tmp_path_factory.mktemp("small"), 10)


def test_a_file_outside_the_spec_directory_is_refused(spec_dir: Path,  # noqa: F811
                                                     tmp_path_factory: pytest.TempPathFactory
                                                     ) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "setup.sh"
    outside.write_text("true\n")
    spec = parse_spec(write(spec_dir, GOOD.replace(
        "  - file: {source: files", f"  - shell: {{script: {outside}}}\n"
                                     "  - file: {source: files")))
    with pytest.raises(UsageError, match="outside the spec's directory"):
        context_files(spec.path, spec.files())


def _tar(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w") as tar:
        for member in members:
            data = b"x" * member.size if member.isfile() else None
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 1,
            link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size if kind == tarfile.REGTYPE else 0, link
    return info


@pytest.mark.parametrize(("member", "problem"), [
    (_member("../escape"), "outside the destination"),
    (_member("/etc/passwd-copy"), "absolute|outside"),
    (_member("link", tarfile.SYMTYPE, link="/etc/passwd"), "not a regular file"),
    (_member("hard", tarfile.LNKTYPE, link="../x"), "not a regular file"),
    (_member("dev", tarfile.CHRTYPE), "not a regular file"),
    (_member("fifo", tarfile.FIFOTYPE), "not a regular file"),
])
def test_hostile_contexts_are_refused(tmp_path: Path, member: tarfile.TarInfo,
                                      problem: str) -> None:
    archive = _tar(tmp_path / "bad.tar", _member("template.yaml"), member)
    target = tmp_path / "out"
    with pytest.raises(ImageError, match=problem):
        unpack_context(archive, target, 1 << 20)
    assert not (tmp_path / "escape").exists()


def test_not_a_tar(tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(b"\0" * 10 + b"not tar" * 100)
    with pytest.raises(ImageError, match="not a tar archive"):
        unpack_context(tmp_path / "x.tar", tmp_path / "out", 1 << 20)


def _raw_tar(path: Path, *members: tuple[str, bytes, bytes]) -> Path:
    """(name, data, typeflag) members written byte by byte, as tarfile would not."""
    from tests.images import hostile
    return hostile.write_archive(path, *(hostile.member(n, d, t) for n, d, t in members))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", ["-1536", "abc"])
def test_a_pax_size_that_is_no_size(tmp_path: Path, size: str) -> None:
    from tests.images import hostile
    archive = _raw_tar(tmp_path / "ctx.tar",
                       ("PaxHeaders/template.yaml", hostile.pax_record("size", size), b"x"),
                       ("template.yaml", b"name: x\n", b"0"))
    with pytest.raises(ImageError, match=r"ctx\.tar is not a tar archive, or a damaged one: "
                                         r"pax size"):
        unpack_context(archive, tmp_path / "out", 1 << 20)
    assert not (tmp_path / "out").exists()


def test_limits_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "ctx.tar", _member("template.yaml", size=10),
                   *(_member(f"f{i}") for i in range(5)))
    target = tmp_path / "out"
    with pytest.raises(LimitExceeded, match="over 5 members"):
        unpack_context(archive, target, 1 << 20, max_members=5)
    with pytest.raises(LimitExceeded, match=r"over 12 bytes unpacked \(at member 'f2'"):
        unpack_context(archive, target, 12)
    assert not target.exists()
    unpack_context(archive, target, 15, max_members=6)
    assert sorted(p.name for p in target.iterdir()) == ["f0", "f1", "f2", "f3", "f4",
                                                        "template.yaml"]


@pytest.mark.parametrize(("members", "problem"), [
    ((("a", b"x", b"0"), ("a", b"y", b"0")), "'a' appears twice"),
    ((("a", b"x", b"0"), ("a/b", b"y", b"0")), "'a/b' appears twice, or as both a file"),
    ((("a", b"x", b"0"), ("a/b/c", b"y", b"0")), "'a/b/c' is inside a member that is a file"),
])
def test_a_failed_write_leaves_nothing(tmp_path: Path,
                                       members: tuple[tuple[str, bytes, bytes], ...],
                                       problem: str) -> None:
    archive = _raw_tar(tmp_path / "ctx.tar", ("keep/first", b"1", b"0"), *members)
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine").write_text("was here before")
    with pytest.raises(ImageError, match=problem):
        unpack_context(archive, target, 1 << 20)
    assert [p.name for p in target.iterdir()] == ["mine"]


def test_modes_kept_are_the_executable_bit(tmp_path: Path) -> None:
    script, secret = _member("run.sh"), _member("setuid")
    script.mode, secret.mode = 0o700, 0o4777
    unpack_context(_tar(tmp_path / "ctx.tar", script, secret), tmp_path / "out", 1 << 20)
    assert (tmp_path / "out" / "run.sh").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "out" / "setuid").stat().st_mode & 0o7777 == 0o755


def test_the_caps_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from glasspane.settings import DEFAULT_CONTEXT_LIMIT, Settings
    assert Settings.load().context_limit == DEFAULT_CONTEXT_LIMIT == 4 << 30
    monkeypatch.setenv("GLASSPANE_CONTEXT_LIMIT", "512M")
    monkeypatch.setenv("GLASSPANE_CONTEXT_MEMBERS", "300")
    loaded = Settings.load()
    assert (loaded.context_limit, loaded.context_members) == (512 << 20, 300)
    monkeypatch.setenv("GLASSPANE_CONTEXT_MEMBERS", "3k")
    with pytest.raises(UsageError, match="GLASSPANE_CONTEXT_MEMBERS='3k' is not a positive "
                                         "number"):
        Settings.load()
