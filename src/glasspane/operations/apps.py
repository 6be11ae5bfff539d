"""The operations on apps (groups of containers one compose-style spec describes), each written
once: deploying a spec sent as a stored context into a running VM, and removing an app's
containers.  Both run as tasks and bring the containers up to date afterwards."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import select

from glasspane.errors import Conflict, NotFound
from glasspane.inventory.models import Host, Vm
from glasspane.operations.catalogue import Admission, Command, Context, Result, operation
from glasspane.operations.containers import containers_refreshed

APPS_PATH = "/vms/{host}/{vm}/apps"
VM_TARGET = "{host}/{vm}"


def running_vm(admission: Admission, host: str, vm: str) -> None:
    """A 404 for a VM the inventory lacks and a 409 for one not running."""
    with admission.database.session() as session:
        state = session.scalar(select(Vm.power_state).join(Host).where(Host.name == host,
                                                                          Vm.name == vm))
    if state is None:
        raise NotFound(f"no VM named {vm!r} on host {host}")
    if state != "running":
        raise Conflict(f"VM {vm} on host {host} is {state}: start it first")


class VmApps(Command):
    host: str = Field(min_length=1, max_length=64, description="the VM's host")
    vm: str = Field(min_length=1, max_length=128)


# -- deploy -----------------------------------------------------------------------------------
class Deploy(VmApps):
    context: str = Field(min_length=1, max_length=128,
                         description="a stored tar archive of the spec's directory")
    spec: str = Field(default="app.yaml", min_length=1, max_length=255,
                      description="the spec's path inside the context")


class ServiceChange(Result):
    service: str
    action: str = Field(description="what was done to it: created, recreated, started, "
                                    "unchanged, removed")


class Deployed(Result):
    services: list[ServiceChange]


def admit_deploy(admission: Admission, command: Deploy) -> None:
    """A 404 for a context the store lacks, then the VM's checks: now, not as a failed task
    later."""
    from glasspane.inventory.store import ImageStore
    ImageStore(admission.settings.data_dir, admission.settings.store_reserve
               ).path(command.context)
    running_vm(admission, command.host, command.vm)


@operation("app.deploy", "POST", APPS_PATH, Deploy, Deployed, task=True, pinned=True,
           target_name=VM_TARGET, admit=admit_deploy)
def deploy(context: Context, command: Deploy) -> Deployed:
    """Deploy or update the app in the context's spec (a task: unchanged services keep
    running, changed ones are recreated, ones gone from the spec are removed)."""
    from glasspane.containers.app import deploy_app
    from glasspane.inventory.store import ImageStore
    from glasspane.inventory.store_handlers import app_in_context
    settings = context.settings
    store = ImageStore(settings.data_dir, settings.store_reserve)
    # Its result and its errors name the store's files by name, never the server's paths.
    places = {"DATA_DIR": settings.data_dir, "CACHE_DIR": settings.cache_dir}
    context.progress(5, f"deploying {command.spec} into {command.vm}")
    with store.confined(places), containers_refreshed(context), \
            app_in_context(store, command.context, command.spec) as spec_path:
        done = deploy_app(settings, command.host, command.vm, spec_path)
    return Deployed(services=[ServiceChange(service=s, action=a) for s, a in done])


# -- remove -----------------------------------------------------------------------------------
class RemoveApp(VmApps):
    name: str = Field(min_length=1, max_length=64, description="the app's name")


class AppRemoved(Result):
    removed: list[str] = Field(description="the names of the containers removed")


def admit_remove(admission: Admission, command: RemoveApp) -> None:
    running_vm(admission, command.host, command.vm)


@operation("app.remove", "DELETE", f"{APPS_PATH}/{{name}}", RemoveApp, AppRemoved, task=True,
           target_name=VM_TARGET, admit=admit_remove)
def remove(context: Context, command: RemoveApp) -> AppRemoved:
    """Remove every container of the app."""
    from glasspane.containers.app import remove_app
    with containers_refreshed(context):
        removed = remove_app(context.settings, command.host, command.vm, command.name)
    return AppRemoved(removed=removed)
