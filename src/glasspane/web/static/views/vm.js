// A VM: its actions, then its tabs (the console's in console.js). Hardware and graphs wait for
// the server to report them.
import { html, useState } from "../lib.js";
import { Badge } from "../lib.js";
import { enc } from "../api.js";
import { containerLists, containers, tasks } from "../store.js";
import { containerKey, go, vmKey } from "../routes.js";
import { ActionBar, VM_ACTIONS } from "../actions.js";
import { Fields, Panel } from "./parts.js";
import { useRead } from "./fetch.js";
import { TaskTable } from "./tasks.js";
import { ConsolePane } from "./console.js";

export const VM_TABS = [["overview", "Overview"], ["hardware", "Hardware"], ["console", "Console"],
  ["graphs", "Graphs"], ["snapshots", "Snapshots"], ["containers", "Containers"], ["tasks", "Tasks"]];

const labels = (vm) => Object.entries(vm.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");

export function VmPane({ object: vm, tab, tabs }) {
  const path = `/vms/${enc(vm.host, vm.name)}`;
  const facts = useRead("facts", `${path}/facts`, vm.power_state);
  const [consoleView, setConsoleView] = useState("serial");
  return html`<h1>VM ${vm.name}</h1>
    <${ActionBar} object=${vm} actions=${VM_ACTIONS} />
    ${tabs}
    <${Panel} tab=${tab}>
      ${tab === "overview" && html`<${Fields} rows=${[["host", vm.host],
        ["power state", html`<${Badge} value=${vm.power_state} />`],
        ["addresses", (vm.addresses || []).join(", ")], ["template", vm.template],
        ["disk", html`<span id="vm-disk">${facts.error || (facts.data ? facts.data.disk || "–" : "…")}</span>`],
        ["labels", labels(vm)], ["UUID", vm.uuid],
        ["containers", vm.container_count], ["containers error", vm.containers_error]]} />`}
      ${tab === "hardware" && html`<${Fields} rows=${[["disk", facts.data && facts.data.disk],
        ["addresses", (vm.addresses || []).join(", ")]]} />
        <p class="muted">The VM's CPUs, memory, disks and network cards, and their changes, are
          shown here once the server reports a VM's hardware.</p>`}
      ${tab === "console" && html`<${ConsolePane} vm=${vm} sub=${consoleView} pick=${setConsoleView} />`}
      ${tab === "graphs" && html`<p class="muted">CPU, memory, disk and network graphs of this VM
          are shown here once the server keeps its metrics.</p>`}
      ${tab === "snapshots" && html`<${Snapshots} vm=${vm} facts=${facts} />`}
      ${tab === "containers" && html`<${Containers} vm=${vm} />`}
      ${tab === "tasks" && html`<${TaskTable} tasks=${[...tasks.values()].filter((t) =>
        t.object_name === `${vm.host}/${vm.name}` || t.object_name === vm.name)} />`}
    <//>`;
}

function Snapshots({ vm, facts }) {
  const revert = VM_ACTIONS.find((action) => action.op === "vm.revert");
  const allowed = !vm.stale && (vm.actions || []).includes("vm.revert");
  if (facts.error) return html`<p id="vm-snapshots" class="error">${facts.error}</p>`;
  if (!facts.data) return html`<p id="vm-snapshots">…</p>`;
  return html`<table id="vm-snapshots"><thead><tr><th>Snapshot</th><th></th></tr></thead><tbody>
    ${facts.data.snapshots.length ? facts.data.snapshots.map((name) => html`<tr key=${name} data-snapshot=${name}>
      <td>${name}</td><td><button disabled=${!allowed} onClick=${() => revert.go(vm, name)}>Revert</button></td>
    </tr>`) : html`<tr><td colspan="2" class="muted">none</td></tr>`}
  </tbody></table>`;
}

function Containers({ vm }) {
  const names = (containerLists.get(vmKey(vm.host, vm.name)) || { names: [] }).names;
  const rows = names.map((name) => containers.get(containerKey(vm.host, vm.name, name))).filter(Boolean);
  if (!rows.length) return html`<p class="muted">${vm.containers_error || "No containers."}</p>`;
  return html`<table id="vm-containers"><thead><tr><th>Container</th><th>State</th><th>Image</th>
    <th>Ports</th></tr></thead><tbody>${rows.map((c) => html`<tr key=${c.name} data-container=${c.name}>
      <td><a href=${`?sel=${encodeURIComponent(containerKey(vm.host, vm.name, c.name))}`}
        onClick=${(event) => { event.preventDefault(); go({ sel: containerKey(vm.host, vm.name, c.name), tab: "overview" }); }}
        >${c.name}</a></td>
      <td><${Badge} value=${c.state} /></td><td>${c.image}</td><td>${(c.ports || []).join(", ")}</td>
    </tr>`)}</tbody></table>`;
}
