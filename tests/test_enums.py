"""The shared vocabulary: values are the strings stored and sent, the tables cover every
action, and roles order as documented."""

from glasspane.enums import (
    CONTAINER_ACTION_STATES,
    VM_ACTION_STATES,
    ContainerAction,
    ContainerState,
    PowerState,
    Role,
    VmAction,
    container_actions_allowed,
    vm_actions_allowed,
)


def test_every_action_has_its_states() -> None:
    assert set(VM_ACTION_STATES) == set(VmAction)
    assert set(CONTAINER_ACTION_STATES) == set(ContainerAction)


def test_allowed_actions_follow_the_state() -> None:
    assert vm_actions_allowed("halted") == [VmAction.START]
    assert VmAction.START not in vm_actions_allowed(PowerState.RUNNING)
    assert {VmAction.RESUME, VmAction.POWEROFF} <= set(vm_actions_allowed("paused"))
    assert vm_actions_allowed("no-such-state") == []
    assert container_actions_allowed(ContainerState.PAUSED) == [
        ContainerAction.STOP, ContainerAction.UNPAUSE, ContainerAction.REMOVE]


def test_values_are_the_stored_strings_and_roles_order() -> None:
    assert PowerState("running") == "running" and f"{PowerState.HALTED}" == "halted"
    assert Role.ADMIN.allows("operator") and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows("operator")
