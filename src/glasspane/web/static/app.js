// The pane: a tree of hosts, their VMs and the VMs' containers, details and actions for the
// selected object, a task drawer, all kept live by the server's event stream.
// Plain DOM code, no framework, nothing fetched from anywhere but this server. Every value
// shown goes through textContent, never innerHTML: names come from guests.
"use strict";

const API = "/api/v1";
const ROLES = ["viewer", "operator", "admin"];
const PAGE = 200;
const state = { user: null, selected: null, expanded: new Set(), tasks: new Map(),
                filter: "", source: null, view: "inventory" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

async function api(path, options = {}) {
  const headers = { "X-Glasspane": "1", ...(options.body ? { "Content-Type": "application/json" } : {}) };
  const response = await fetch(API + path, { credentials: "same-origin", ...options, headers });
  if (response.status === 401 && path !== "/auth/login") { showLogin(); throw new Error("logged out"); }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const detail = typeof body === "object" ? body.detail : body;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return body;
}

// "a=1, b=2" (or spaces) as an object; a key without "=" maps to "".
function parsePairs(text) {
  return Object.fromEntries(text.split(/[\s,]+/).filter(Boolean).map((pair) => {
    const at = pair.indexOf("=");
    return at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
  }));
}

const can = (role) => state.user && ROLES.indexOf(state.user.role) >= ROLES.indexOf(role);
const badge = (text) => el("span", { class: `badge ${text}` }, text);

// ---- login ---------------------------------------------------------------------------------
function showLogin() {
  document.getElementById("pane").hidden = true;
  document.getElementById("login").hidden = false;
  if (state.source) { state.source.close(); state.source = null; }
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const error = document.getElementById("login-error");
  error.textContent = "";
  try {
    await api("/auth/login", { method: "POST",
      body: JSON.stringify({ name: form.get("name"), password: form.get("password") }) });
    await start();
  } catch (exc) { error.textContent = exc.message; }
});

document.getElementById("logout").addEventListener("click", async () => {
  await api("/auth/logout", { method: "POST" }).catch(() => {});
  showLogin();
});

// ---- the tree ------------------------------------------------------------------------------
function node(kind, key, label, status, onOpen, expandable) {
  const toggle = el("span", { class: "toggle" }, expandable ? (state.expanded.has(key) ? "▾" : "▸") : "");
  const row = el("div", { class: "node", role: "treeitem", "data-key": key, "data-kind": kind,
                          tabindex: "0" },
                 toggle, el("span", { class: "kind" }, kind), el("span", { class: "label" }, label),
                 el("span", { class: "status" }, status ? badge(status) : null));
  if (state.selected === key) row.classList.add("selected");
  row.addEventListener("click", () => {
    if (expandable) {
      if (state.expanded.has(key)) state.expanded.delete(key); else state.expanded.add(key);
    }
    select(key, onOpen);
  });
  return row;
}

function select(key, onOpen) {
  state.selected = key;
  for (const row of document.querySelectorAll(".node")) {
    row.classList.toggle("selected", row.dataset.key === key);
  }
  onOpen();
  renderTree();
}

async function renderTree() {
  const tree = document.getElementById("tree");
  const hosts = await api("/hosts?limit=1000");
  const items = [];
  for (const host of hosts.items) {
    const key = `host:${host.name}`;
    const li = el("li", {}, node("host", key, `${host.name} (${host.vm_count})`, host.state,
                                 () => showHost(host), true));
    if (state.expanded.has(key)) li.append(await vmList(host.name));
    items.push(li);
  }
  tree.replaceChildren(...items);
}

async function vmList(host, shown = PAGE) {
  const query = new URLSearchParams({ host, limit: String(shown) });
  if (state.filter) query.set("q", state.filter);
  const vms = await api(`/vms?${query}`);
  const list = el("ul", { role: "group" });
  for (const vm of vms.items) {
    const key = `vm:${host}/${vm.name}`;
    const li = el("li", {}, node("vm", key, vm.name, vm.power_state, () => showVm(host, vm.name),
                                 vm.container_count > 0));
    if (state.expanded.has(key)) li.append(await containerList(host, vm.name));
    list.append(li);
  }
  if (vms.total > vms.items.length) {
    list.append(el("li", { class: "more", onclick: async (e) => {
      e.currentTarget.closest("ul").replaceWith(await vmList(host, shown + PAGE));
    } }, `${vms.total - vms.items.length} more…`));
  }
  return list;
}

async function containerList(host, vm) {
  const containers = await api(`/containers?${new URLSearchParams({ host, vm, limit: "1000" })}`);
  return el("ul", { role: "group" }, containers.items.map((c) => el("li", {},
    node("container", `container:${host}/${vm}/${c.name}`, c.name, c.state,
         () => showContainer(host, vm, c.name), false))));
}

// ---- details -------------------------------------------------------------------------------
function details(title, fields, actions = [], extra = []) {
  const list = el("dl", {}, fields.flatMap(([name, value]) =>
    [el("dt", {}, name), el("dd", {}, value === null || value === undefined || value === "" ? "–" : value)]));
  document.getElementById("details").replaceChildren(
    el("h1", {}, title), list, el("div", { class: "actions" }, actions), ...extra);
}

function actionButton(label, role, run, confirmText = null, danger = false) {
  return el("button", { class: danger ? "danger" : "", disabled: !can(role),
                        title: can(role) ? null : `needs the ${role} role`,
                        "data-action": label.toLowerCase(),
    onclick: async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      try { trackTask(await run()); } catch (exc) { window.alert(exc.message); }
    } }, label);
}

async function showHost(host) {
  const path = `/hosts/${encodeURIComponent(host.name)}`;
  const remove = actionButton("Remove host", "admin", async () => {
    await api(path, { method: "DELETE" });
    state.selected = null;
    scheduleRedraw();
  }, `Forget host ${host.name}? (its VMs are not touched)`, true);
  if (host.name === "local") remove.disabled = true;
  const templates = el("table", { id: "host-templates" });
  details(`Host ${host.name}`, [["state", badge(host.state)], ["URI", host.uri],
    ["driver", host.driver], ["hypervisor", host.info.hypervisor], ["CPUs", host.info.cpus],
    ["memory", host.info.memory_mib ? `${host.info.memory_mib} MiB` : null],
    ["acceleration", host.info.acceleration && host.info.acceleration_reason
      ? `${host.info.acceleration}: ${host.info.acceleration_reason}` : host.info.acceleration],
    ["networks", (host.info.networks || []).join(", ")], ["last seen", host.last_seen],
    ["error", host.error]], [remove], [el("h2", {}, "Templates"), templates]);
  const found = await api(`/templates?${new URLSearchParams({ host: host.name, limit: "1000" })}`);
  templates.replaceChildren(
    el("tr", {}, el("th", {}, "Template"), el("th", {}, "Virtual size"), el("th", {}, "Stored"),
       el("th", {}, "")),
    ...found.items.map((t) => el("tr", { "data-template": t.name }, el("td", {}, t.name),
      el("td", {}, human(t.virtual_size)), el("td", {}, human(t.allocation)),
      el("td", { class: "actions" }, actionButton("Remove", "operator",
        () => api(`/templates/${encodeURIComponent(host.name)}/${encodeURIComponent(t.name)}`,
                  { method: "DELETE" }), `Remove template ${t.name}?`, true)))));
}

function human(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

async function showVm(host, name) {
  const vm = await api(`/vms/${encodeURIComponent(host)}/${encodeURIComponent(name)}`);
  const path = `/vms/${encodeURIComponent(host)}/${encodeURIComponent(name)}`;
  const act = (action) => () => api(`${path}/actions/${action}`, { method: "POST" });
  // What the server says this user may do to the VM now (its role, the VM's power state).
  const allowedNow = (button, operation) => {
    if (!(vm.actions || []).includes(operation)) button.disabled = true;
    return button;
  };
  const buttons = ["start", "shutdown", "reboot", "pause", "suspend", "resume"].map((action) =>
    allowedNow(actionButton(action[0].toUpperCase() + action.slice(1), "operator", act(action)),
               `vm.${action}`));
  buttons.push(allowedNow(actionButton("Snapshot", "operator", () => {
    const snapshot = window.prompt("Snapshot name", "snap-1");
    if (!snapshot) throw new Error("no name given");
    return api(`${path}/snapshots`, { method: "POST", body: JSON.stringify({ name: snapshot }) });
  }), "vm.snapshot"));
  buttons.push(allowedNow(actionButton("Revert", "operator", () => {
    const snapshot = window.prompt("Revert to snapshot", "snap-1");
    if (!snapshot) throw new Error("no snapshot named");
    return api(`${path}/snapshots/${encodeURIComponent(snapshot)}/revert`, { method: "POST" });
  }, `Revert VM ${name}? Its disks go back to the snapshot.`), "vm.revert"));
  buttons.push(allowedNow(actionButton("Resources", "operator", async () => {
    const cpus = window.prompt("vCPUs from the next boot (empty: unchanged)", "");
    const memory = window.prompt("Memory in MiB from the next boot (empty: unchanged)", "");
    const body = {};
    if (cpus) body.cpus = Number(cpus);
    if (memory) body.memory_mib = Number(memory);
    const done = await api(`${path}/resources`, { method: "PATCH", body: JSON.stringify(body) });
    window.alert(`VM ${name}: set, ${done.applies}`);
    return null;
  }), "vm.set"));
  const exportButton = allowedNow(actionButton("Export", "operator", () => {
    const output = window.prompt("Export to the image store as (the extension names the format: .xva .ova .qcow2 .vhd .vmdk .raw)", `${name}.qcow2`);
    if (!output) throw new Error("no name given");
    return api(`${path}/export`, { method: "POST", body: JSON.stringify({ output }) });
  }), "vm.export");
  if (exportButton.disabled && can("operator")) exportButton.title = "shut the VM down first";
  buttons.push(exportButton);
  const configureButton = actionButton("Configure", "operator", () => openConfigure(host, name));
  const deployButton = actionButton("Deploy app", "operator", async () => {
    const contexts = (await api("/images")).filter((i) => i.kind === "tar").map((i) => i.name);
    const context = window.prompt(`The app's directory, as a tar in the image store (${contexts.join(", ") || "none yet: upload one"})`, contexts[0] || "");
    if (!context) throw new Error("no context named");
    const spec = window.prompt("The app spec's path inside it", "app.yaml");
    if (!spec) throw new Error("no spec named");
    return api(`/vms/${encodeURIComponent(host)}/${encodeURIComponent(name)}/apps`,
               { method: "POST", body: JSON.stringify({ context, spec }) });
  });
  for (const button of [configureButton, deployButton]) {
    if (vm.power_state !== "running") { button.disabled = true; button.title = "start the VM first"; }
    buttons.push(button);
  }
  buttons.push(allowedNow(actionButton("Destroy", "operator", () => api(path, { method: "DELETE" }),
                                       `Destroy VM ${name} and its disks?`, true), "vm.destroy"));
  const console = el("pre", { id: "console" }, "…");
  const disk = el("span", { id: "vm-disk" }, "…");
  const snapshots = el("span", { id: "vm-snapshots" }, "…");
  details(`VM ${name}`, [["host", host], ["power state", badge(vm.power_state)],
    ["addresses", vm.addresses.join(", ")], ["template", vm.template],
    ["disk", disk], ["snapshots", snapshots],
    ["labels", Object.entries(vm.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ")],
    ["UUID", vm.uuid],
    ["containers", vm.containers.length], ["containers error", vm.containers_error]],
    buttons, [el("h2", {}, "Console"), console]);
  api(`${path}/facts`).then((facts) => {
    disk.textContent = facts.disk || "–";
    snapshots.textContent = facts.snapshots.join(", ") || "none";
  }).catch((exc) => { disk.textContent = snapshots.textContent = exc.message; });
  api(`${path}/console?lines=60`).then((text) => { console.textContent = text || "(empty)"; })
    .catch((exc) => { console.textContent = exc.message; });
}

async function showContainer(host, vm, name) {
  const containers = await api(`/containers?${new URLSearchParams({ host, vm, limit: "1000" })}`);
  const c = containers.items.find((item) => item.name === name);
  if (!c) { details(`Container ${name}`, [["state", "gone"]]); return; }
  const path = `/containers/${[host, vm, name].map(encodeURIComponent).join("/")}`;
  const act = (action) => () => api(`${path}/actions/${action}`, { method: "POST" });
  // The server says which operations this caller may run on the container now.
  const allowedNow = (button, operation) => {
    if (!(c.actions || []).includes(operation)) button.disabled = true;
    return button;
  };
  const buttons = ["start", "stop", "restart", "pause", "unpause"].map((action) =>
    allowedNow(actionButton(action[0].toUpperCase() + action.slice(1), "operator", act(action)),
               `container.${action}`));
  buttons.push(allowedNow(actionButton("Remove", "operator", act("remove"),
                                       `Remove container ${name} from VM ${vm}?`, true),
                          "container.remove"));
  const logs = el("pre", { id: "logs" }, "…");
  const refresh = el("button", { onclick: () => loadLogs() }, "Refresh logs");
  const loadLogs = () => api(`${path}/logs?tail=200`)
    .then((text) => { logs.textContent = text || "(no output)"; })
    .catch((exc) => { logs.textContent = exc.message; });
  details(`Container ${name}`, [["VM", `${host}/${vm}`], ["state", badge(c.state)],
    ["status", c.status], ["image", c.image], ["ports", c.ports.join(", ")], ["app", c.app],
    ["id", c.id], ["created", c.created]], buttons, [el("h2", {}, "Logs"), refresh, logs]);
  loadLogs();
}

// ---- tasks ---------------------------------------------------------------------------------
function trackTask(task) {
  if (task && task.id) { state.tasks.set(task.id, task); renderTasks(); }
}

function renderTasks() {
  const rows = [...state.tasks.values()].sort((a, b) => b.id - a.id).slice(0, 50);
  document.getElementById("tasks").replaceChildren(...rows.map((t) => el("li",
    { "data-task": t.id, "data-state": t.state },
    el("span", {}, `#${t.id}`),
    el("span", { title: `${t.kind} ${t.object_name}` }, `${t.kind} ${t.object_name}`),
    el("progress", { max: "100", value: String(t.progress || 0) }),
    t.error ? el("span", { class: "error" }, t.error)
      : el("span", { class: "muted" }, t.state === "succeeded" ? "done" : t.message || ""),
    badge(t.state))));
}

async function loadTasks() {
  const recent = await api("/tasks?limit=20");
  for (const task of recent.items) state.tasks.set(task.id, task);
  renderTasks();
}

// ---- live events ---------------------------------------------------------------------------
let redraw = null;
function scheduleRedraw() {
  clearTimeout(redraw);  // many events in a burst: one redraw
  redraw = setTimeout(async () => {
    await renderTree();
    const row = state.selected && document.querySelector(`.node[data-key="${CSS.escape(state.selected)}"]`);
    if (row && !document.querySelector("dialog[open]")) row.click();
  }, 300);
}

function connectEvents() {
  const live = document.getElementById("live");
  state.source = new EventSource(`${API}/events`);
  state.source.onopen = () => { live.textContent = "live"; live.className = "badge ok"; };
  state.source.onerror = () => { live.textContent = "reconnecting"; live.className = "badge paused"; };
  state.source.onmessage = () => {};
  const onTask = (event) => {
    const data = JSON.parse(event.data);
    const id = Number(data.object_name);
    const task = state.tasks.get(id) || { id, kind: data.data.kind || "task", object_name: data.data.object_name || "" };
    Object.assign(task, { state: data.data.state || task.state, progress: data.data.progress ?? task.progress,
                          message: data.data.message ?? task.message, error: data.data.error ?? task.error });
    if (data.data.state === "succeeded") { task.progress = 100; task.message = "done"; }
    state.tasks.set(id, task);
    renderTasks();
    if (data.kind === "task.finished" && state.view === "images") loadImages();
    if (data.kind === "task.finished" && state.view === "audit") loadAudit();
  };
  for (const kind of ["task.created", "task.progress", "task.finished"]) state.source.addEventListener(kind, onTask);
  for (const kind of ["host.state", "host.added", "host.removed", "vm.state", "vm.added", "vm.removed",
                      "container.state", "container.added", "container.removed", "vm.containers_error"]) {
    state.source.addEventListener(kind, scheduleRedraw);
  }
}

// ---- new VM --------------------------------------------------------------------------------
document.getElementById("new-vm-button").addEventListener("click", async () => {
  const dialog = document.getElementById("new-vm");
  const [hosts, templates] = await Promise.all([api("/hosts?limit=1000"), api("/templates?limit=1000")]);
  document.getElementById("new-vm-host").replaceChildren(...hosts.items.map((h) => el("option", { value: h.name }, h.name)));
  document.getElementById("new-vm-template").replaceChildren(...templates.items.map((t) =>
    el("option", { value: t.name }, `${t.name} (${t.host})`)));
  document.getElementById("new-vm-error").textContent = "";
  dialog.showModal();
});

document.getElementById("new-vm-form").addEventListener("submit", async (event) => {
  if (event.submitter && event.submitter.value !== "create") return;
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { name: form.get("name"), host: form.get("host"), template: form.get("template"),
                 cpus: Number(form.get("cpus")), memory_mib: Number(form.get("memory_mib")) };
  if (form.get("disk_gib")) body.disk_gib = Number(form.get("disk_gib"));
  if (form.get("ssh_key").trim()) body.ssh_keys = [form.get("ssh_key").trim()];
  if (form.get("user_data").trim()) body.user_data = form.get("user_data");
  if (form.get("network").trim()) body.network = form.get("network").trim();
  const labels = form.get("labels").trim();
  if (labels) body.labels = parsePairs(labels);
  try {
    trackTask(await api("/vms", { method: "POST", body: JSON.stringify(body) }));
    document.getElementById("new-vm").close();
  } catch (exc) { document.getElementById("new-vm-error").textContent = exc.message; }
});

// ---- configure with Ansible ----------------------------------------------------------------
function openConfigure(host, name) {
  const dialog = document.getElementById("configure");
  dialog.dataset.vm = name;
  document.getElementById("configure-title").textContent = `Configure ${name} with Ansible`;
  document.getElementById("configure-error").textContent = "";
  dialog.showModal();
  return null;  // the task comes when the form is sent
}

document.getElementById("configure-form").addEventListener("submit", async (event) => {
  if (event.submitter && event.submitter.value !== "run") return;
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { vms: [document.getElementById("configure").dataset.vm], playbook: form.get("playbook"),
                 extra_vars: parsePairs(form.get("extra_vars").trim()) };
  try {
    trackTask(await api("/vms/configure", { method: "POST", body: JSON.stringify(body) }));
    document.getElementById("configure").close();
  } catch (exc) { document.getElementById("configure-error").textContent = exc.message; }
});

// ---- views --------------------------------------------------------------------------------
function showView(name) {
  state.view = name;
  for (const tab of document.querySelectorAll("#views [data-view]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === name));
  }
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `${name}-view`;
  if (name === "images") loadImages();
  if (name === "audit") loadAudit();
}

for (const tab of document.querySelectorAll("#views [data-view]")) {
  tab.addEventListener("click", () => showView(tab.dataset.view));
}

// ---- the image store -----------------------------------------------------------------------
async function loadImages() {
  const images = await api("/images");
  const rows = images.map((image) => {
    const path = `/images/${encodeURIComponent(image.name)}`;
    const buttons = [
      el("a", { href: `${API}${path}/content`, download: image.name }, "Download"),
      el("button", { onclick: async () => {
        const info = document.getElementById("image-info");
        info.hidden = false;
        info.textContent = JSON.stringify(await api(path), null, 2);
      } }, "Info"),
      actionButton("Check", "operator", () => api(`${path}/check`, { method: "POST" })),
      actionButton("Convert", "operator", () => {
        const output = window.prompt("Convert into (the extension names the format: .qcow2 .vhd .vmdk .raw .xva .ova)", "");
        if (!output) throw new Error("no name given");
        return api(`${path}/convert`, { method: "POST", body: JSON.stringify({ output }) });
      }),
      actionButton("Import as template", "operator", () => {
        const name = window.prompt("Template name", image.name.replace(/\.[^.]*$/, ""));
        if (!name) throw new Error("no name given");
        const host = window.prompt("On host", "local");
        if (!host) throw new Error("no host given");
        return api("/templates", { method: "POST", body: JSON.stringify({ name, host, image: image.name }) });
      }),
      actionButton("Delete", "operator", async () => { await api(path, { method: "DELETE" }); loadImages(); },
                   `Delete ${image.name} from the store?`, true),
    ];
    return el("tr", { "data-image": image.name }, el("td", {}, image.name), el("td", {}, image.kind),
      el("td", {}, human(image.size)), el("td", {}, el("code", { title: image.sha256 }, image.sha256.slice(0, 16))),
      el("td", {}, image.created_by), el("td", {}, image.created_at.replace("T", " ").slice(0, 19)),
      el("td", { class: "actions" }, buttons));
  });
  document.querySelector("#images tbody").replaceChildren(...rows);
}

document.getElementById("upload-button").addEventListener("click", () => {
  const file = document.getElementById("upload-file").files[0];
  const status = document.getElementById("upload-status");
  if (!file) { status.textContent = "choose a file first"; return; }
  const name = document.getElementById("upload-name").value.trim() || file.name;
  const bar = document.getElementById("upload-progress");
  // XMLHttpRequest, not fetch: only it reports upload progress.
  const request = new XMLHttpRequest();
  request.open("PUT", `${API}/images/${encodeURIComponent(name)}`);
  request.setRequestHeader("X-Glasspane", "1");
  request.setRequestHeader("Content-Type", "application/octet-stream");
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) bar.value = Math.round(100 * event.loaded / event.total);
  };
  request.onload = () => {
    bar.hidden = true;
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (exc) { body = { detail: request.responseText }; }
    status.textContent = request.status === 201 ? `stored ${body.name} (${body.kind}, ${human(body.size)})`
      : `upload failed: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`;
    loadImages();
  };
  request.onerror = () => { bar.hidden = true; status.textContent = "upload failed: connection lost"; };
  bar.value = 0;
  bar.hidden = false;
  status.textContent = `uploading ${name}…`;
  request.send(file);
});

// ---- audit ---------------------------------------------------------------------------------
async function loadAudit() {
  if (!can("admin")) return;
  const query = new URLSearchParams({ limit: "200" });
  const user = document.getElementById("audit-user").value.trim();
  const action = document.getElementById("audit-action").value.trim();
  if (user) query.set("user", user);
  if (action) query.set("action", action);
  const entries = await api(`/audit?${query}`);
  document.getElementById("audit-total").textContent = `${entries.items.length} of ${entries.total}`;
  document.querySelector("#audit tbody").replaceChildren(...entries.items.map((a) => el("tr",
    { "data-audit": a.id }, el("td", {}, a.at.replace("T", " ").slice(0, 19)), el("td", {}, a.user),
    el("td", {}, a.action), el("td", {}, `${a.object_type} ${a.object_name}`),
    el("td", {}, badge(a.outcome)), el("td", {}, a.status_code), el("td", {}, a.address || ""),
    el("td", {}, a.count > 1 ? `×${a.count}: ${a.detail}` : a.detail))));
}

document.getElementById("audit-refresh").addEventListener("click", () => loadAudit());

// ---- add host ------------------------------------------------------------------------------
document.getElementById("add-host-button").addEventListener("click", () => {
  document.getElementById("add-host-error").textContent = "";
  document.getElementById("add-host").showModal();
});

document.getElementById("add-host-form").addEventListener("submit", async (event) => {
  if (event.submitter && event.submitter.value !== "add") return;
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { name: form.get("name"), uri: form.get("uri"), driver: form.get("driver"),
                 verify_tls: form.get("verify_tls") === "on" };
  if (form.get("user").trim()) body.user = form.get("user").trim();
  if (form.get("password")) body.password = form.get("password");
  if (form.get("ca_pem").trim()) body.ca_pem = form.get("ca_pem");
  const submit = document.getElementById("add-host-submit");
  submit.disabled = true;
  try {
    await api("/hosts", { method: "POST", body: JSON.stringify(body) });
    document.getElementById("add-host").close();
    event.target.reset();
    scheduleRedraw();
  } catch (exc) { document.getElementById("add-host-error").textContent = exc.message; }
  finally { submit.disabled = false; }
});

// ---- start ---------------------------------------------------------------------------------
let filterTimer = null;
document.getElementById("filter").addEventListener("input", (event) => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    state.filter = event.target.value.trim();
    if (state.filter) document.querySelectorAll('.node[data-kind="host"]').forEach((row) => state.expanded.add(row.dataset.key));
    renderTree();
  }, 250);
});

async function start() {
  state.user = await api("/auth/me");
  document.getElementById("login").hidden = true;
  document.getElementById("pane").hidden = false;
  document.getElementById("whoami").textContent = `${state.user.name} (${state.user.role})`;
  for (const button of document.querySelectorAll("[data-needs]")) button.disabled = !can(button.dataset.needs);
  await renderTree();
  await loadTasks();
  if (!state.source) connectEvents();
}

start().catch(() => showLogin());
