"""glasspane's vocabulary, written once: the states of VMs, containers and tasks, the roles,
the image formats and the actions, with the rules that join them (which power states allow
which action).  The drivers, the services, the API (and through its allowed actions, the page)
and the CLI all take their words from here; each is a `StrEnum`, so a value is also the string
the database, the JSON and the command line carry."""

from __future__ import annotations

from enum import StrEnum


class PowerState(StrEnum):
    """A VM's power state as glasspane reports it, whatever the hypervisor's own words."""

    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"
    SUSPENDED = "suspended"
    CRASHED = "crashed"
    UNKNOWN = "unknown"


class VmAction(StrEnum):
    START = "start"
    SHUTDOWN = "shutdown"      # ask the guest, then force after the timeout
    POWEROFF = "poweroff"      # at once
    REBOOT = "reboot"
    PAUSE = "pause"
    RESUME = "resume"
    SUSPEND = "suspend"


# The power states each VM action may start from: the one table the API's 409s, the drivers'
# checks and the page's enabled buttons all read.
VM_ACTION_STATES: dict[VmAction, frozenset[PowerState]] = {
    VmAction.START: frozenset({PowerState.HALTED}),
    VmAction.SHUTDOWN: frozenset({PowerState.RUNNING, PowerState.PAUSED}),
    VmAction.POWEROFF: frozenset({PowerState.RUNNING, PowerState.PAUSED,
                                  PowerState.SUSPENDED, PowerState.CRASHED}),
    VmAction.REBOOT: frozenset({PowerState.RUNNING}),
    VmAction.PAUSE: frozenset({PowerState.RUNNING}),
    VmAction.RESUME: frozenset({PowerState.PAUSED, PowerState.SUSPENDED}),
    VmAction.SUSPEND: frozenset({PowerState.RUNNING}),
}


def vm_actions_allowed(state: PowerState | str) -> list[VmAction]:
    """The power actions a VM in `state` accepts, in the table's order."""
    return [action for action, states in VM_ACTION_STATES.items() if state in states]


class ContainerState(StrEnum):
    """A container's state in the Docker Engine API's words (which Podman's compatible API
    also uses)."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"
    UNKNOWN = "unknown"


class ContainerAction(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    REMOVE = "remove"


CONTAINER_ACTION_STATES: dict[ContainerAction, frozenset[ContainerState]] = {
    ContainerAction.START: frozenset({ContainerState.CREATED, ContainerState.EXITED}),
    ContainerAction.STOP: frozenset({ContainerState.RUNNING, ContainerState.RESTARTING,
                                     ContainerState.PAUSED}),
    ContainerAction.RESTART: frozenset({ContainerState.RUNNING, ContainerState.EXITED,
                                        ContainerState.CREATED}),
    ContainerAction.PAUSE: frozenset({ContainerState.RUNNING}),
    ContainerAction.UNPAUSE: frozenset({ContainerState.PAUSED}),
    ContainerAction.REMOVE: frozenset(ContainerState),
}


def container_actions_allowed(state: ContainerState | str) -> list[ContainerAction]:
    return [action for action, states in CONTAINER_ACTION_STATES.items() if state in states]


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TASK_FINISHED = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})


class Role(StrEnum):
    """Each role can do what the ones before it can."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role | str) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(Role(needed))


class DiskFormat(StrEnum):
    RAW = "raw"
    VHD = "vhd"
    QCOW2 = "qcow2"
    VMDK = "vmdk"


class ImageFormat(StrEnum):
    """Every format the toolkit reads: the disk formats and the whole-VM archives."""

    RAW = "raw"
    VHD = "vhd"
    QCOW2 = "qcow2"
    VMDK = "vmdk"
    XVA = "xva"
    OVA = "ova"


class ExportFormat(StrEnum):
    """What a template is delivered as, one per target."""

    XVA = "xva"
    VHD = "vhd"
    QCOW2 = "qcow2"
    OVA = "ova"
    RAW = "raw"


class VmDefaults:
    """A new VM's resources when the user names none: written once, read by the CLI's
    options, the API's models and the services."""

    CPUS = 2
    MEMORY_MIB = 512
    CMDLINE = "root=LABEL=root rw console=ttyS0"


class HostState(StrEnum):
    """A registered host as the inventory last saw it."""

    OK = "ok"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"        # registered, not yet looked at


class ConsoleKind(StrEnum):
    """A VM's consoles: its serial port (text, to type into) and its screen (VNC's RFB)."""

    SERIAL = "serial"
    VNC = "vnc"


class DiskBus(StrEnum):
    """The bus a VM's disk hangs on (XenServer has one kind of its own: any is taken there)."""

    VIRTIO = "virtio"
    SCSI = "scsi"
    SATA = "sata"


class NicModel(StrEnum):
    VIRTIO = "virtio"
    E1000 = "e1000"
    RTL8139 = "rtl8139"


class Firmware(StrEnum):
    BIOS = "bios"
    UEFI = "uefi"


class HardwareLimits:
    """How much hardware one VM may be given: written once, read by the commands' models,
    the CLI's options and the drivers."""

    DISKS = 16
    NICS = 8
    CDROMS = 4
    DISK_GIB = 65536
