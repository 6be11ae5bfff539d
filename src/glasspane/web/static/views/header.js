// The bar above every view: the live badge, the views, New VM and Add host, the theme
// switch, who is logged in.
import { html } from "../lib.js";
import { api } from "../api.js";
import { can, live, loadHosts, trackTask, user } from "../store.js";
import { go, route } from "../routes.js";
import { openForm } from "../forms.js";
import { nextTheme, theme } from "../theme.js";
import { disconnect } from "../events.js";
import { parsePairs } from "../lib.js";

const VIEWS = [["inventory", "Inventory", "viewer"], ["images", "Images", "viewer"],
               ["audit", "Audit", "admin"]];
const LIVE = { live: "ok", reconnecting: "paused", offline: "offline" };

async function newVm() {
  const [hosts, templates] = await Promise.all([api("/hosts?limit=1000"), api("/templates?limit=1000")]);
  openForm({
    id: "new-vm", title: "New VM", submit: "Create", submitId: "create-vm",
    fields: [
      { name: "name", label: "Name", required: true, pattern: "[a-z0-9][a-z0-9\\-]{0,62}",
        title: "lower-case letters, digits and dashes, at most 63" },
      { name: "host", label: "Host", type: "select", id: "new-vm-host",
        options: hosts.items.map((h) => [h.name, h.name]) },
      { name: "template", label: "Template", type: "select", id: "new-vm-template", required: true,
        options: templates.items.map((t) => [t.name, `${t.name} (${t.host})`]) },
      { name: "cpus", label: "vCPUs", type: "number", min: 1, max: 64, value: 2, required: true },
      { name: "memory_mib", label: "Memory (MiB)", type: "number", min: 128, max: 1048576,
        value: 512, required: true },
      { name: "disk_gib", label: "Disk (GiB, empty: the template's)", type: "number", min: 1, max: 65536 },
      { name: "ssh_keys", label: "SSH public key", type: "textarea", rows: 2, maxLength: 16384 },
      { name: "user_data", label: "cloud-init user-data", type: "textarea", rows: 4 },
      { name: "labels", label: "Labels (KEY=VALUE, comma-separated)" },
      { name: "network", label: "Network (empty: the host's usual one)", maxLength: 128 },
    ],
    run: async (v) => {
      const body = { name: v.name, host: v.host, template: v.template, cpus: v.cpus,
                     memory_mib: v.memory_mib };
      if (v.disk_gib !== null) body.disk_gib = v.disk_gib;
      if (v.ssh_keys.trim()) body.ssh_keys = [v.ssh_keys.trim()];
      if (v.user_data.trim()) body.user_data = v.user_data;
      if (v.network.trim()) body.network = v.network.trim();
      if (v.labels.trim()) body.labels = parsePairs(v.labels.trim());
      trackTask(await api("/vms", { method: "POST", body }));
    },
  });
}

function addHost() {
  openForm({
    id: "add-host", title: "Add host", submit: "Add", submitId: "add-host-submit",
    fields: [
      { name: "name", label: "Name", required: true, pattern: "[a-z0-9][a-z0-9._\\-]{0,62}" },
      { name: "uri", label: "URI", required: true, maxLength: 512,
        placeholder: "qemu+ssh://root@kvm1/system or https://xcp1.example.com" },
      { name: "driver", label: "Driver", type: "select", value: "libvirt",
        options: [["libvirt", "libvirt (QEMU/KVM)"], ["xenapi", "xenapi (XenServer/XCP-ng pool)"]] },
      { name: "user", label: "User (xenapi)", maxLength: 128 },
      { name: "password", label: "Password (xenapi)", type: "password", autocomplete: "new-password" },
      { name: "verify_tls", label: "Verify the pool master's TLS certificate", type: "checkbox", value: true },
      { name: "ca_pem", label: "Trusted certificate (PEM, optional)", type: "textarea", rows: 3 },
    ],
    run: async (v) => {
      const body = { name: v.name, uri: v.uri, driver: v.driver, verify_tls: v.verify_tls };
      if (v.user.trim()) body.user = v.user.trim();
      if (v.password) body.password = v.password;
      if (v.ca_pem.trim()) body.ca_pem = v.ca_pem;
      await api("/hosts", { method: "POST", body });
      loadHosts();
    },
  });
}

async function logOut() {
  await api("/auth/logout", { method: "POST" }).catch(() => {});
  disconnect();
  window.location.reload();  // the login form, and nothing of this user's left in the store
}

export function Header() {
  const me = user.value;
  return html`<header>
    <strong>glasspane</strong>
    <span id="live" class=${`badge ${LIVE[live.value]}`} title="live event stream">${live.value}</span>
    <nav id="views" role="tablist" aria-label="Views">
      ${VIEWS.map(([name, label, needs]) => html`<button key=${name} role="tab" data-view=${name}
        aria-selected=${String(route.value.view === name)} disabled=${!can(needs)}
        onClick=${() => go({ view: name })}>${label}</button>`)}
    </nav>
    <span class="spacer"></span>
    <button id="new-vm-button" disabled=${!can("operator")} onClick=${newVm}>New VM</button>
    <button id="add-host-button" disabled=${!can("admin")} onClick=${addHost}>Add host</button>
    <button id="theme" onClick=${nextTheme} aria-label=${`Theme: ${theme.value}`}
      title="light, dark or the system's">◐ ${theme.value}</button>
    <span id="whoami">${me.name} (${me.role})</span>
    <button id="logout" onClick=${logOut}>Log out</button>
  </header>`;
}
