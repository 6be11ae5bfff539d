"""The answers of the routes outside the VM catalogue: hosts, templates, images, containers,
apps, users and tokens, logins, the audit log, the server's health.  Each is the route's
`response_model`: it documents the answer in the OpenAPI document and filters it (a key
not named here never leaves the server).  Values a host or a guest reports are typed with
`schemas.known`, so that one odd word cannot turn a listing into a 500."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from glasspane.api.schemas import ReportedContainerState, ReportedPowerState, Timestamp
from glasspane.enums import HostState, ImageFormat, Role

# ---- hosts ---------------------------------------------------------------------------------


class HostSummary(BaseModel):
    """What the last inventory pass learnt of the host (empty until one has looked)."""

    hypervisor: str | None = None
    cpus: int | None = None
    memory_mib: int | None = None
    acceleration: str | None = Field(default=None, description="kvm, tcg, ...")
    acceleration_reason: str | None = None
    networks: list[str] = Field(default_factory=list)


class HostView(BaseModel):
    name: str
    uri: str = Field(description="without its password; without its query but to admins")
    driver: str = Field(description="libvirt or xenapi")
    state: HostState
    error: str | None = Field(default=None, description="why it is unreachable")
    info: HostSummary = Field(default_factory=HostSummary)
    last_seen: Timestamp | None = None


class HostListed(HostView):
    vm_count: int = Field(ge=0)


class HostRemoved(BaseModel):
    removed: str


class AccelerationView(BaseModel):
    kind: str = Field(description="kvm (hardware) or tcg (emulation), ...")
    reason: str


class StorageView(BaseModel):
    name: str
    path: str | None = Field(description="on the host")
    capacity: int
    allocation: int
    available: int
    active: bool


class NetworkView(BaseModel):
    name: str
    bridge: str
    active: bool


class VmOnHost(BaseModel):
    name: str
    uuid: str
    power_state: ReportedPowerState
    template: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class HostFacts(BaseModel):
    """What the hypervisor says now (the fields of `hypervisors.base.HostInfo`, which the
    CLI builds again from this answer)."""

    name: str
    uri: str
    driver: str
    hostname: str
    hypervisor: str
    cpu_model: str
    cpus: int
    memory_mib: int
    free_memory_mib: int
    acceleration: AccelerationView
    storage: list[StorageView] = Field(default_factory=list)
    vms: list[VmOnHost] = Field(default_factory=list)
    networks: list[NetworkView] = Field(default_factory=list)


# ---- templates -----------------------------------------------------------------------------


class TemplateView(BaseModel):
    host: str
    name: str
    virtual_size: int = Field(description="bytes the guest sees")
    allocation: int = Field(description="bytes used on the host")


class SpecCheck(BaseModel):
    """A template spec, checked without building it."""

    name: str
    source: str
    provisioners: int = Field(ge=0)
    outputs: list[str] = Field(description="the files a build would store")


# ---- images --------------------------------------------------------------------------------


class StoredImageView(BaseModel):
    name: str
    size: int = Field(ge=0)
    sha256: str
    kind: str = Field(description="a disk or VM format (qcow2, vhd, xva, ...), "
                                  "container-archive, tar (a build context) or file")
    created_by: str
    created_at: str


class ImageInfo(BaseModel):
    """What `image info` says of a disk image or VM archive; each format adds its own
    fields (a VHD's type, an XVA's checksums, ...).  References to other files are stored
    images' names, never the server's paths."""

    model_config = ConfigDict(extra="allow")
    format: ImageFormat
    file_size: int
    virtual_size: int
    allocated_size: int | None = Field(default=None, description="disk images")
    backing_chain: list[dict[str, Any]] | None = Field(default=None, description="disk images")
    vm: dict[str, Any] | None = Field(default=None, description="VM archives")
    disks: list[dict[str, Any]] | None = Field(default=None, description="VM archives")


class ImageFacts(StoredImageView):
    info: ImageInfo | None = Field(default=None, description="disk images and VM archives")


class ImageDeleted(BaseModel):
    deleted: str


class EngineImage(BaseModel):
    """A container image in a VM's engine."""

    id: str = Field(description="the short id")
    tags: list[str]
    size: int
    created: int = Field(description="seconds since the epoch")


# ---- containers and apps -------------------------------------------------------------------


class ContainerView(BaseModel):
    host: str
    vm: str
    name: str
    id: str = Field(description="the engine's short id")
    image: str
    state: ReportedContainerState
    status: str = Field(description="the engine's words: Up 3 hours, Exited (0) ...")
    ports: list[str]
    app: str | None = None
    created: str
    actions: list[str] = Field(description="the operations the caller may run on it now "
                                           "(container.stop)")


class AppContainer(BaseModel):
    name: str
    state: ReportedContainerState


class AppView(BaseModel):
    host: str
    vm: str
    name: str
    containers: list[AppContainer]


class AppCheck(BaseModel):
    name: str
    services: list[str]


# ---- users, tokens, logins -----------------------------------------------------------------


class UserView(BaseModel):
    name: str
    role: Role
    disabled: bool
    created_at: Timestamp


class Status(BaseModel):
    status: str


class PasswordSet(BaseModel):
    user: str
    status: str
    revoked_tokens: int = Field(ge=0)


class IssuedToken(BaseModel):
    """A new API token: `token`, the secret, is in this answer and nowhere else."""

    user: str
    name: str
    token: str


class TokenView(BaseModel):
    name: str
    prefix: str = Field(description="the secret's first characters, to tell tokens apart")
    created_at: Timestamp
    expires_at: Timestamp | None = None


class Session(BaseModel):
    token: str = Field(description="also set as the HttpOnly cookie")
    user: str
    role: Role
    expires_in: int = Field(description="seconds")


class Me(BaseModel):
    name: str
    role: Role


# ---- the audit log and the server ----------------------------------------------------------


class AuditView(BaseModel):
    id: int
    at: Timestamp
    user: str
    action: str
    object_type: str
    object_name: str
    outcome: str = Field(description="accepted, succeeded, denied, failed, ...")
    status_code: int
    detail: str
    address: str | None = None
    count: int = Field(ge=1, description="how many requests the row stands for")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    database: Literal["sqlite", "postgresql"]
    instance: str
