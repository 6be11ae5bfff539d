// The pane: a tree of hosts, their VMs and the VMs' containers, details and actions for the
// selected object, a task drawer, all kept live by the server's event stream.
// Plain DOM code, no framework, nothing fetched from anywhere but this server. Every value
// shown goes through textContent, never innerHTML: names come from guests.
"use strict";

const API = "/api/v1";
const ROLES = ["viewer", "operator", "admin"];
const PAGE = 200;
const state = { user: null, selected: null, expanded: new Set(), tasks: new Map(),
                filter: "", source: null };

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

function showHost(host) {
  details(`Host ${host.name}`, [["state", badge(host.state)], ["URI", host.uri],
    ["driver", host.driver], ["hypervisor", host.info.hypervisor], ["CPUs", host.info.cpus],
    ["memory", host.info.memory_mib ? `${host.info.memory_mib} MiB` : null],
    ["acceleration", host.info.acceleration], ["last seen", host.last_seen],
    ["error", host.error]]);
}

async function showVm(host, name) {
  const vm = await api(`/vms/${encodeURIComponent(host)}/${encodeURIComponent(name)}`);
  const path = `/vms/${encodeURIComponent(host)}/${encodeURIComponent(name)}`;
  const act = (action) => () => api(`${path}/actions/${action}`, { method: "POST" });
  const allowed = { start: ["halted"], shutdown: ["running", "paused"], reboot: ["running"],
                    pause: ["running"], suspend: ["running"], resume: ["paused", "suspended"] };
  const buttons = Object.keys(allowed).map((action) => {
    const button = actionButton(action[0].toUpperCase() + action.slice(1), "operator", act(action));
    if (!allowed[action].includes(vm.power_state)) button.disabled = true;
    return button;
  });
  buttons.push(actionButton("Snapshot", "operator", () => {
    const snapshot = window.prompt("Snapshot name", "snap-1");
    if (!snapshot) throw new Error("no name given");
    return api(`${path}/snapshots`, { method: "POST", body: JSON.stringify({ name: snapshot }) });
  }));
  buttons.push(actionButton("Destroy", "operator", () => api(path, { method: "DELETE" }),
                            `Destroy VM ${name} and its disks?`, true));
  const console = el("pre", { id: "console" }, "…");
  details(`VM ${name}`, [["host", host], ["power state", badge(vm.power_state)],
    ["addresses", vm.addresses.join(", ")], ["template", vm.template],
    ["labels", Object.entries(vm.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ")],
    ["UUID", vm.uuid],
    ["containers", vm.containers.length], ["containers error", vm.containers_error]],
    buttons, [el("h2", {}, "Console"), console]);
  api(`${path}/console?lines=60`).then((text) => { console.textContent = text || "(empty)"; })
    .catch((exc) => { console.textContent = exc.message; });
}

async function showContainer(host, vm, name) {
  const containers = await api(`/containers?${new URLSearchParams({ host, vm, limit: "1000" })}`);
  const c = containers.items.find((item) => item.name === name);
  if (!c) { details(`Container ${name}`, [["state", "gone"]]); return; }
  const path = `/containers/${[host, vm, name].map(encodeURIComponent).join("/")}`;
  const act = (action) => () => api(`${path}/actions/${action}`, { method: "POST" });
  const allowed = { start: ["exited", "created", "stopped"], stop: ["running", "paused"],
                    restart: ["running", "exited", "created", "stopped"], pause: ["running"],
                    unpause: ["paused"] };
  const buttons = Object.keys(allowed).map((action) => {
    const button = actionButton(action[0].toUpperCase() + action.slice(1), "operator", act(action));
    if (!allowed[action].includes(c.state)) button.disabled = true;
    return button;
  });
  buttons.push(actionButton("Remove", "operator", act("remove"),
                            `Remove container ${name} from VM ${vm}?`, true));
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
    t.error ? el("span", { class: "error" }, t.error) : el("span", { class: "muted" }, t.message || ""),
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
  if (labels) {
    body.labels = Object.fromEntries(labels.split(/[\s,]+/).filter(Boolean).map((pair) => {
      const at = pair.indexOf("=");
      return at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
    }));
  }
  try {
    trackTask(await api("/vms", { method: "POST", body: JSON.stringify(body) }));
    document.getElementById("new-vm").close();
  } catch (exc) { document.getElementById("new-vm-error").textContent = exc.message; }
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
