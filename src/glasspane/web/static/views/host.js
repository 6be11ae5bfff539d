// A host: what the inventory knows of it and its templates. Hosts carry no allowed actions:
// removing one is an admin's, as the server says; the local host is never removed.
import { html, useState } from "../lib.js";
import { Badge, human } from "../lib.js";
import { api, enc } from "../api.js";
import { can, tasks, trackTask } from "../store.js";
import { go } from "../routes.js";
import { confirmThen } from "../forms.js";
import { Fields, Panel } from "./parts.js";
import { useRead } from "./fetch.js";
import { TaskTable } from "./tasks.js";

export function HostPane({ object: host, tab, tabs }) {
  const info = host.info || {};
  const removable = can("admin") && host.name !== "local";
  const remove = () => confirmThen(`Forget host ${host.name}?`, "Its VMs are not touched.", "Remove",
    async () => { await api(`/hosts/${enc(host.name)}`, { method: "DELETE" }); go({ sel: "" }); });
  return html`<h1>Host ${host.name}</h1>
    <div class="actions" role="toolbar" aria-label="Actions">
      <button class="danger" data-action="remove host" disabled=${!removable} onClick=${remove}
        title=${removable ? undefined : (host.name === "local" ? "the local host stays" : "needs the admin role")}
        >Remove host</button>
    </div>
    ${tabs}
    <${Panel} tab=${tab}>
      ${tab === "overview" && html`<${Fields} rows=${[["state", html`<${Badge} value=${host.state} />`],
        ["URI", host.uri], ["driver", host.driver], ["hypervisor", info.hypervisor], ["CPUs", info.cpus],
        ["memory", info.memory_mib ? `${info.memory_mib} MiB` : null],
        ["acceleration", info.acceleration && info.acceleration_reason
          ? `${info.acceleration}: ${info.acceleration_reason}` : info.acceleration],
        ["networks", (info.networks || []).join(", ")], ["last seen", host.last_seen],
        ["error", host.error]]} />
        <h2>Templates</h2><${Templates} host=${host.name} />`}
      ${tab === "tasks" && html`<${TaskTable} tasks=${[...tasks.values()].filter((t) =>
        t.object_name === host.name || t.object_name.startsWith(`${host.name}/`))} />`}
    <//>`;
}

function Templates({ host }) {
  const [again, setAgain] = useState(0);
  const read = useRead("templates", `/templates?${new URLSearchParams({ host, limit: "1000" })}`, again);
  if (read.error) return html`<p class="error">${read.error}</p>`;
  const remove = (t) => confirmThen(`Remove template ${t.name}?`, "VMs cloned from it keep running.",
    "Remove", async () => {
      trackTask(await api(`/templates/${enc(host, t.name)}`, { method: "DELETE" }));
      setAgain(again + 1);
    });
  return html`<table id="host-templates"><thead><tr><th>Template</th><th>Virtual size</th>
    <th>Stored</th><th></th></tr></thead><tbody>
    ${(read.data ? read.data.items : []).map((t) => html`<tr key=${t.name} data-template=${t.name}>
      <td>${t.name}</td><td>${human(t.virtual_size)}</td><td>${human(t.allocation)}</td>
      <td class="actions"><button class="danger" data-action="remove" disabled=${!can("operator")}
        onClick=${() => remove(t)}>Remove</button></td></tr>`)}
  </tbody></table>`;
}
