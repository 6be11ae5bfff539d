"""Template specs: the YAML file `glasspane template build` reads (documented in
docs/template-spec.md).  Parsing checks everything a build would trip over later, so that a
mistake costs a second, not a booted build VM: every error names the file, line and key.

    name: web-base
    variables: {motd: "built by glasspane"}        # ${motd} below; --var motd=... overrides
    source: {debian: {suite: bookworm, packages: [curl]}}   # or {image: FILE}
    resources: {cpus: 2, memory: 1024, disk: 4}    # memory in MiB, disk in GiB
    provisioners:
      - shell: {inline: ["echo ${motd} > /etc/motd"]}
      - file: {source: files/app.tar, destination: /opt/app/app.tar}
      - ansible: {playbook: site.yml, extra_vars: {port: 8080}}
    generalize: true
    outputs:
      - {format: xva, vm_name: web-base, vcpus: 2, memory: 1024}
      - {format: vhd, compress: bz2}
      - {format: qcow2, compress: true}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glasspane.errors import UsageError
from glasspane.yamlspec import MAX_SPEC_BYTES, TOP, Located, SpecReader, load_yaml, outside

_TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SUITE = re.compile(r"^[a-z]+$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
FORMATS = ("xva", "vhd", "qcow2", "ova", "raw")
EXTENSIONS = {"xva": ".xva", "vhd": ".vhd", "qcow2": ".qcow2", "ova": ".ova", "raw": ".raw"}
TOP_KEYS = {"name", "description", "variables", "source", "resources", "provisioners",
            "generalize", "outputs", "build"}
OUTPUT_KEYS = {"xva": {"vm_name", "vcpus", "memory"}, "vhd": {"compress"},
               "qcow2": {"compress"}, "ova": {"vm_name", "vcpus", "memory"}, "raw": set()}
DEFAULT_SSH_TIMEOUT = 600
DEFAULT_STEP_TIMEOUT = 1800
# What substituted variables may add to a spec in all: a megabyte of values referenced a few
# hundred thousand times would otherwise be built into terabytes of strings.
MAX_EXPANSION = 4 * MAX_SPEC_BYTES


@dataclass(frozen=True)
class Source:
    image: Path | None = None        # an image file in any supported format
    kernel: Path | None = None       # for images without a bootloader
    initrd: Path | None = None
    suite: str | None = None         # or a Debian release built with mmdebstrap
    packages: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.image is not None:
            return str(self.image)
        extra = f" with {', '.join(self.packages)}" if self.packages else ""
        return f"Debian {self.suite} (mmdebstrap){extra}"


@dataclass(frozen=True)
class Resources:
    cpus: int = 2
    memory_mib: int = 1024
    disk_gib: int | None = None      # grown to this size; default: the source's


@dataclass(frozen=True)
class Provisioner:
    kind: str                        # shell | file | ansible
    where: str                       # "provisioners[2] (ansible)", for messages
    inline: tuple[str, ...] = ()
    script: Path | None = None
    environment: dict[str, str] = field(default_factory=dict)
    sudo: bool = True
    source: Path | None = None
    destination: str = ""
    mode: str | None = None
    playbook: Path | None = None
    extra_vars: dict[str, Any] = field(default_factory=dict)
    timeout: float = DEFAULT_STEP_TIMEOUT


@dataclass(frozen=True)
class Output:
    name: str                        # what --only selects; the file's stem is the template's
    format: str
    compress: str | None = None      # vhd: "bz2"; qcow2: "zlib"
    vm_name: str | None = None
    vcpus: int | None = None
    memory_mib: int | None = None

    def filename(self, template: str) -> str:
        suffix = EXTENSIONS[self.format] + (".bz2" if self.compress == "bz2" else "")
        return template + suffix


@dataclass(frozen=True)
class TemplateSpec:
    path: Path
    name: str
    description: str
    source: Source
    resources: Resources
    provisioners: list[Provisioner]
    generalize: bool
    outputs: list[Output]
    ssh_timeout: float
    digest: str                      # the file's and the variables' SHA-256
    variables: dict[str, str]

    def files(self) -> list[Path]:
        """The files the spec names (they travel with it to a server)."""
        source = self.source
        named = [p for p in (source.image, source.kernel, source.initrd) if p is not None]
        for step in self.provisioners:
            named += [p for p in (step.script, step.source, step.playbook) if p is not None]
        return named


def parse_vars(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--var K=V` options as a mapping."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _VARIABLE.fullmatch("${" + key + "}"):
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE")
        result[key] = value
    return result


class _SpecParser:
    def __init__(self, path: Path, overrides: dict[str, str], confine: Path | None = None
                 ) -> None:
        self.path = path
        self.base = path.parent
        self.confine = confine
        self.reader = SpecReader(path)
        self.overrides = overrides
        self.variables: dict[str, str] = {}
        self.expanded = 0

    def fail(self, where: str, problem: str, mapping: Any = None, key: str | None = None
             ) -> UsageError:
        return self.reader.fail(where, problem, mapping, key)

    # Variables are substituted into every string after the file is read, so each value is
    # then checked exactly like one written out.
    def substitute(self, value: Any, where: str, parent: Any, key: str | None) -> Any:
        if isinstance(value, Located):
            result = Located({k: self.substitute(v, f"{where}.{k}" if where else k, value, k)
                              for k, v in value.items()})
            result.line, result.lines = value.line, value.lines
            return result
        if isinstance(value, list):
            return [self.substitute(v, f"{where}[{i}]", parent, key)
                    for i, v in enumerate(value)]
        if isinstance(value, str):
            def one(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in self.variables:
                    raise self.fail(where, f"undefined variable ${{{name}}} (define it under "
                                    "`variables:` or pass --var)", parent, key)
                self.expanded += len(self.variables[name])
                if self.expanded > MAX_EXPANSION:
                    raise self.fail(where, f"variables expand to more than {MAX_EXPANSION} "
                                    "bytes in all", parent, key)
                return self.variables[name]
            return _VARIABLE.sub(one, value)
        return value

    def integer(self, parent: Located, key: str, where: str, low: int, high: int) -> int:
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected a whole number, found {value!r}", parent, key)
        if not low <= value <= high:
            raise self.fail(where, f"{value} is out of range ({low}..{high})", parent, key)
        return value

    def boolean(self, parent: Located, key: str, where: str) -> bool:
        value = parent[key]
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, found {value!r}", parent, key)
        return value

    def local_file(self, parent: Located, key: str, where: str, directory: bool = False
                   ) -> Path:
        named = self.reader.string(parent, key, where)
        path = self.base / named
        if outside(path, self.confine):
            raise self.fail(where, f"{named!r} is outside the context (name files "
                            "relative to the spec, inside its directory)", parent, key)
        if not (path.is_file() or (directory and path.is_dir())):
            raise self.fail(where, f"no such file: {path}", parent, key)
        return path

    def parse(self) -> TemplateSpec:
        raw = load_yaml(self.path)
        top = self.reader.mapping(raw, TOP, TOP_KEYS, {"name", "source", "outputs"})
        self.variables = self._variables(top)
        top = self.substitute(top, "", None, None)
        name = self.reader.string(top, "name", "name")
        if not _TEMPLATE_NAME.match(name):
            raise self.fail("name", f"invalid template name {name!r} (lowercase letters, "
                            "digits and '-', at most 41)", top, "name")
        build = self.reader.mapping(top.get("build", Located()), "build", {"ssh_timeout"})
        ssh_timeout = (self.integer(build, "ssh_timeout", "build.ssh_timeout", 10, 7200)
                       if "ssh_timeout" in build else DEFAULT_SSH_TIMEOUT)
        provisioners = top.get("provisioners") or []
        if not isinstance(provisioners, list):
            raise self.fail("provisioners", "expected a list", top, "provisioners")
        outputs = self._outputs(top)
        digest = hashlib.sha256(self.path.read_bytes() + repr(sorted(
            self.variables.items())).encode()).hexdigest()
        return TemplateSpec(
            self.path, name,
            self.reader.string(top, "description", "description") if "description" in top
            else "",
            self._source(top), self._resources(top),
            [self._provisioner(p, i, top) for i, p in enumerate(provisioners)],
            self.boolean(top, "generalize", "generalize") if "generalize" in top else True,
            outputs, float(ssh_timeout), digest, dict(self.variables))

    def _variables(self, top: Located) -> dict[str, str]:
        declared: dict[str, str] = {}
        if "variables" in top:
            mapping = top["variables"]
            allowed = set(mapping) if isinstance(mapping, dict) else set()
            mapping = self.reader.mapping(mapping, "variables", allowed)
            for key in mapping:
                if not _VARIABLE.fullmatch("${" + key + "}"):
                    raise self.fail(f"variables.{key}", "invalid variable name", mapping, key)
                declared[key] = self.reader.string(mapping, key, f"variables.{key}")
        for key in self.overrides:
            if key not in declared:
                raise UsageError(f"--var {key}: {self.path} declares no variable {key!r}",
                                 hint="declare it under `variables:` with a default")
        return {**declared, **self.overrides}

    def _source(self, top: Located) -> Source:
        source = self.reader.mapping(top["source"], "source",
                                     {"image", "kernel", "initrd", "debian"})
        if ("image" in source) == ("debian" in source):
            raise self.fail("source", "give exactly one of `image` (a file) or `debian` "
                            "(a release to build)", top, "source")
        if "debian" in source:
            debian = self.reader.mapping(source["debian"], "source.debian",
                                         {"suite", "packages"})
            suite = (self.reader.string(debian, "suite", "source.debian.suite")
                     if "suite" in debian else "bookworm")
            if not _SUITE.match(suite):
                raise self.fail("source.debian.suite", f"invalid suite {suite!r}", debian,
                                "suite")
            packages = (self.reader.strings(debian, "packages", "source.debian.packages")
                        if "packages" in debian else [])
            for package in packages:
                if not _PACKAGE.match(package):
                    raise self.fail("source.debian.packages", f"invalid package name "
                                    f"{package!r}", debian, "packages")
            return Source(suite=suite, packages=tuple(packages))
        return Source(
            image=self.local_file(source, "image", "source.image"),
            kernel=self.local_file(source, "kernel", "source.kernel")
            if "kernel" in source else None,
            initrd=self.local_file(source, "initrd", "source.initrd")
            if "initrd" in source else None)

    def _resources(self, top: Located) -> Resources:
        if "resources" not in top:
            return Resources()
        res = self.reader.mapping(top["resources"], "resources", {"cpus", "memory", "disk"})
        return Resources(
            self.integer(res, "cpus", "resources.cpus", 1, 64) if "cpus" in res else 2,
            self.integer(res, "memory", "resources.memory", 256, 262144)
            if "memory" in res else 1024,
            self.integer(res, "disk", "resources.disk", 1, 2048) if "disk" in res else None)

    def _provisioner(self, value: Any, index: int, top: Located) -> Provisioner:
        where = f"provisioners[{index}]"
        if not isinstance(value, Located) or len(value) != 1:
            raise self.fail(where, "expected a mapping with one key: shell, file or ansible",
                            value if isinstance(value, Located) else top, None
                            if isinstance(value, Located) else "provisioners")
        kind = next(iter(value))
        where = f"{where}.{kind}"
        if kind == "shell":
            return self._shell(value, where)
        if kind == "file":
            spec = self.reader.mapping(value[kind], where, {"source", "destination", "mode",
                                                            "timeout"},
                                       {"source", "destination"})
            destination = self.reader.string(spec, "destination", f"{where}.destination")
            if not destination.startswith("/"):
                raise self.fail(f"{where}.destination", "expected an absolute path in the VM",
                                spec, "destination")
            mode = self.reader.string(spec, "mode", f"{where}.mode") if "mode" in spec \
                else None
            if mode is not None and not re.fullmatch(r"0?[0-7]{3,4}", mode):
                raise self.fail(f"{where}.mode", f"expected an octal mode such as \"0644\", "
                                f"found {mode!r}", spec, "mode")
            return Provisioner("file", where, source=self.local_file(
                spec, "source", f"{where}.source", directory=True), destination=destination,
                mode=mode, timeout=self._timeout(spec, where))
        if kind == "ansible":
            spec = self.reader.mapping(value[kind], where, {"playbook", "extra_vars",
                                                            "timeout"}, {"playbook"})
            extra: dict[str, Any] = {}
            if "extra_vars" in spec:
                mapping = spec["extra_vars"]
                extra = dict(self.reader.mapping(mapping, f"{where}.extra_vars",
                                                 set(mapping) if isinstance(mapping, dict)
                                                 else set()))
            return Provisioner("ansible", where, playbook=self.local_file(
                spec, "playbook", f"{where}.playbook"), extra_vars=extra,
                timeout=self._timeout(spec, where))
        raise self.fail(where, "unknown provisioner (shell, file or ansible)", value, kind)

    def _shell(self, value: Located, where: str) -> Provisioner:
        spec = self.reader.mapping(value["shell"], where, {"inline", "script", "environment",
                                                           "sudo", "timeout"})
        if ("inline" in spec) == ("script" in spec):
            raise self.fail(where, "give exactly one of `inline` (lines) or `script` "
                            "(a file)", spec)
        environment: dict[str, str] = {}
        if "environment" in spec:
            mapping = spec["environment"]
            mapping = self.reader.mapping(mapping, f"{where}.environment",
                                          set(mapping) if isinstance(mapping, dict) else set())
            for key in mapping:
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                    raise self.fail(f"{where}.environment.{key}", "invalid variable name",
                                    mapping, key)
                environment[key] = self.reader.string(mapping, key,
                                                      f"{where}.environment.{key}")
        return Provisioner(
            "shell", where,
            inline=tuple(self.reader.strings(spec, "inline", f"{where}.inline"))
            if "inline" in spec else (),
            script=self.local_file(spec, "script", f"{where}.script")
            if "script" in spec else None,
            environment=environment,
            sudo=self.boolean(spec, "sudo", f"{where}.sudo") if "sudo" in spec else True,
            timeout=self._timeout(spec, where))

    def _timeout(self, spec: Located, where: str) -> float:
        if "timeout" not in spec:
            return DEFAULT_STEP_TIMEOUT
        return float(self.integer(spec, "timeout", f"{where}.timeout", 1, 86400))

    def _outputs(self, top: Located) -> list[Output]:
        items = top["outputs"]
        if not isinstance(items, list) or not items:
            raise self.fail("outputs", "expected a list of one or more outputs", top,
                            "outputs")
        outputs: list[Output] = []
        for index, item in enumerate(items):
            where = f"outputs[{index}]"
            fmt = item.get("format") if isinstance(item, dict) else None
            if fmt not in FORMATS:
                raise self.fail(f"{where}.format", f"expected one of {', '.join(FORMATS)}, "
                                f"found {fmt!r}", item if isinstance(item, Located) else top,
                                "format" if isinstance(item, Located) else "outputs")
            spec = self.reader.mapping(item, where, {"format", "name", *OUTPUT_KEYS[fmt]})
            outputs.append(self._output(spec, where, fmt))
        names = [o.name for o in outputs]
        for name in names:
            if names.count(name) > 1:
                raise self.fail("outputs", f"two outputs are named {name!r}; give one a "
                                "`name:`", top, "outputs")
        return outputs

    def _output(self, spec: Located, where: str, fmt: str) -> Output:
        name = self.reader.string(spec, "name", f"{where}.name") if "name" in spec else fmt
        compress: str | None = None
        if "compress" in spec:
            value = spec["compress"]
            if fmt == "vhd" and value not in ("bz2", False):
                raise self.fail(f"{where}.compress", f"expected bz2 or false, found {value!r}",
                                spec, "compress")
            if fmt == "qcow2" and not isinstance(value, bool):
                raise self.fail(f"{where}.compress", f"expected true or false, found "
                                f"{value!r}", spec, "compress")
            compress = "bz2" if value == "bz2" else ("zlib" if value is True else None)
        return Output(
            name, fmt, compress,
            self.reader.string(spec, "vm_name", f"{where}.vm_name") if "vm_name" in spec
            else None,
            self.integer(spec, "vcpus", f"{where}.vcpus", 1, 64) if "vcpus" in spec else None,
            self.integer(spec, "memory", f"{where}.memory", 64, 262144)
            if "memory" in spec else None)


def parse_spec(path: Path, variables: dict[str, str] | None = None,
               confine: Path | None = None) -> TemplateSpec:
    """The spec in `path`, with `variables` overriding its defaults; UsageError naming the
    file, line and key of the first mistake.  With `confine` (a server's unpacked context),
    every file it names must be inside that directory."""
    return _SpecParser(path, variables or {}, confine).parse()


def select_outputs(spec: TemplateSpec, only: tuple[str, ...] | list[str]) -> list[Output]:
    """The outputs `--only` names (by name or format); all of them when none."""
    if not only:
        return list(spec.outputs)
    chosen = [o for o in spec.outputs if o.name in only or o.format in only]
    unknown = [w for w in only if not any(w in (o.name, o.format) for o in spec.outputs)]
    if unknown:
        raise UsageError(f"--only {', '.join(unknown)}: {spec.path} has no such output",
                         hint="its outputs: " + ", ".join(o.name for o in spec.outputs))
    return chosen
