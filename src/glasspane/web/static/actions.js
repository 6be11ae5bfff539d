// The actions on each kind of object: the operation the server names in an object's
// `actions` (what this caller may run on it now, from its role and the object's state), and
// how the page asks for it: at once, after a confirmation, or through a form. The page keeps
// no rule of its own about states: a button is enabled when the server lists its operation.
import { html, parsePairs, signal } from "./lib.js";
import { api, enc } from "./api.js";
import { can, trackTask } from "./store.js";
import { confirmThen, openForm } from "./forms.js";

export const notice = signal("");
const NAME = "[a-z0-9][a-z0-9\\-]{0,62}";

const post = (path, body) => api(path, { method: "POST", body });

async function run(call) {
  const result = await call();
  trackTask(result);
  return result;
}

// -- VMs --------------------------------------------------------------------------------------
const power = (action, label, confirm) => ({
  label, op: `vm.${action}`,
  go: (vm) => {
    const call = () => run(() => post(`/vms/${enc(vm.host, vm.name)}/actions/${action}`));
    if (confirm) confirmThen(`${label} VM ${vm.name}?`, confirm, label, call);
    else call().catch((exc) => { notice.value = exc.message; });
  },
});

export const VM_ACTIONS = [
  power("start", "Start"),
  power("shutdown", "Shutdown"),
  power("reboot", "Reboot"),
  power("pause", "Pause"),
  power("suspend", "Suspend"),
  power("resume", "Resume"),
  power("poweroff", "Power off", "It is switched off at once, as a pulled plug would."),
  { label: "Snapshot", op: "vm.snapshot", go: (vm) => openForm({
    id: "snapshot", title: `Snapshot VM ${vm.name}`, submit: "Take snapshot",
    fields: [{ name: "name", label: "Snapshot name", required: true, pattern: NAME,
               value: "snap-1", title: "lower-case letters, digits and dashes" }],
    run: (v) => run(() => post(`/vms/${enc(vm.host, vm.name)}/snapshots`, { name: v.name })),
  }) },
  { label: "Revert", op: "vm.revert", go: (vm, snapshot) => openForm({
    id: "revert", title: `Revert VM ${vm.name}`, submit: "Revert", danger: true,
    text: "Its disks go back to the snapshot; what was written since is lost.",
    fields: [{ name: "snapshot", label: "Snapshot", required: true, value: snapshot || "",
               maxLength: 128 }],
    run: (v) => run(() => post(`/vms/${enc(vm.host, vm.name, "snapshots", v.snapshot)}/revert`)),
  }) },
  { label: "Resources", op: "vm.set", go: (vm) => openForm({
    id: "resources", title: `Resources of VM ${vm.name}`, submit: "Set",
    text: "From the next boot; leave a field empty to keep it.",
    fields: [{ name: "cpus", label: "vCPUs", type: "number", min: 1, max: 64 },
             { name: "memory_mib", label: "Memory (MiB)", type: "number", min: 128, max: 1048576 }],
    run: async (v) => {
      const body = {};
      if (v.cpus !== null) body.cpus = v.cpus;
      if (v.memory_mib !== null) body.memory_mib = v.memory_mib;
      const done = await api(`/vms/${enc(vm.host, vm.name)}/resources`, { method: "PATCH", body });
      notice.value = `VM ${vm.name}: set, ${done.applies}`;
    },
  }) },
  { label: "Export", op: "vm.export", go: (vm) => openForm({
    id: "export", title: `Export VM ${vm.name}`, submit: "Export",
    fields: [{ name: "output", label: "Into the image store as", required: true, maxLength: 128,
               value: `${vm.name}.qcow2`, hint: "the extension names the format: .xva .ova .qcow2 .vhd .vmdk .raw" }],
    run: (v) => run(() => post(`/vms/${enc(vm.host, vm.name)}/export`, { output: v.output })),
  }) },
  // Configure and deploy run in the guest, as a command does: offered when the server allows
  // one (vm.exec) on this VM now.
  { label: "Configure", op: "vm.exec", go: (vm) => openForm({
    id: "configure", title: `Configure ${vm.name} with Ansible`, submit: "Run", submitId: "configure-run",
    fields: [{ name: "playbook", label: "Playbook (YAML; it runs on this VM, with glasspane's inventory)",
               type: "textarea", rows: 10, required: true, spellcheck: false,
               value: "- hosts: all\n  become: true\n  tasks:\n    - name: an example\n      ansible.builtin.command: uptime\n" },
             { name: "extra_vars", label: "Extra variables (KEY=VALUE, comma-separated)" }],
    run: (v) => run(() => post("/vms/configure", { vms: [vm.name], playbook: v.playbook,
                                                   extra_vars: parsePairs(v.extra_vars.trim()) })),
  }) },
  { label: "Deploy app", op: "vm.exec", go: async (vm) => {
    const contexts = (await api("/images")).filter((i) => i.kind === "tar").map((i) => i.name);
    openForm({
      id: "deploy", title: `Deploy an app on ${vm.name}`, submit: "Deploy",
      fields: [{ name: "context", label: "The app's directory (a tar in the image store)", type: "select",
                 required: true, options: contexts.map((name) => [name, name]),
                 hint: contexts.length ? "" : "none yet: upload one in Images" },
               { name: "spec", label: "The app spec's path inside it", required: true, value: "app.yaml",
                 maxLength: 255 }],
      run: (v) => run(() => post(`/vms/${enc(vm.host, vm.name)}/apps`, v)),
    });
  } },
  { label: "Destroy", op: "vm.destroy", danger: true, go: (vm) => confirmThen(
    `Destroy VM ${vm.name}?`, "The VM, its disks and its seed are deleted.", "Destroy",
    () => run(() => api(`/vms/${enc(vm.host, vm.name)}`, { method: "DELETE" }))) },
];

// -- containers -------------------------------------------------------------------------------
const containerAction = (action, label, confirm) => ({
  label, op: `container.${action}`, danger: !!confirm,
  go: (c) => {
    const call = () => run(() => post(`/containers/${enc(c.host, c.vm, c.name)}/actions/${action}`));
    if (confirm) confirmThen(`${label} container ${c.name}?`, confirm, label, call);
    else call().catch((exc) => { notice.value = exc.message; });
  },
});

export const CONTAINER_ACTIONS = [
  containerAction("start", "Start"), containerAction("stop", "Stop"),
  containerAction("restart", "Restart"), containerAction("pause", "Pause"),
  containerAction("unpause", "Unpause"),
  containerAction("remove", "Remove", "It is removed from its VM, with what it wrote inside."),
];

// A row of buttons for `object`: each enabled when the server allows its operation now.
export function ActionBar({ object, actions, extra }) {
  const allowed = object.stale ? [] : object.actions || [];
  return html`<div class="actions" role="toolbar" aria-label="Actions">
    ${actions.map((action) => {
      const enabled = allowed.includes(action.op);
      const why = !can("operator") ? "needs the operator role"
        : (object.stale ? "asking the server…" : "not in this state");
      return html`<button key=${action.label} data-action=${action.label.toLowerCase()}
        class=${action.danger ? "danger" : ""} disabled=${!enabled} title=${enabled ? undefined : why}
        onClick=${() => action.go(object, extra)}>${action.label}</button>`;
    })}
  </div>`;
}
