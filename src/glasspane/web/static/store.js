// The normalized store: hosts, VMs, containers and tasks by key, and the lists the tree shows
// (a host's VMs, a VM's containers, the filter's matches), each loaded a page at a time when
// first shown. The event stream's payloads patch it in place (a VM's state, a container
// added); nothing is fetched again whole. Components read `version` to hear of any change.
import { signal } from "./lib.js";
import { api, enc, latest } from "./api.js";
import { containerKey, hostKey, vmKey } from "./routes.js";

export const PAGE = 200;
export const user = signal(null);
export const version = signal(0);
export const live = signal("offline");

export const hosts = new Map();            // name -> host
export const hostList = { names: [], total: 0, loaded: false };
export const vms = new Map();              // vm key -> VM
export const vmLists = new Map();          // host name -> { names, total }
export const containers = new Map();       // container key -> container
export const containerLists = new Map();   // vm key -> { names, total }
export const search = { q: "", keys: [], total: 0 };  // the filter's VMs, by key
export const tasks = new Map();            // id -> task

// Many changes in one burst of events: one render.
let pending = false;
export function changed() {
  if (pending) return;
  pending = true;
  queueMicrotask(() => { pending = false; version.value += 1; });
}

const ROLES = ["viewer", "operator", "admin"];
export const can = (role) => !!user.value
  && ROLES.indexOf(user.value.role) >= ROLES.indexOf(role);

// -- loading ----------------------------------------------------------------------------------
export async function loadHosts(offset = 0) {
  const reply = await latest(`hosts@${offset}`, `/hosts?limit=${PAGE}&offset=${offset}`);
  if (!reply) return;
  if (offset === 0) hostList.names = [];
  for (const host of reply.items) hosts.set(host.name, { ...hosts.get(host.name), ...host });
  hostList.names = hostList.names.concat(reply.items.map((h) => h.name)
    .filter((name) => !hostList.names.includes(name)));
  hostList.total = reply.total;
  hostList.loaded = true;
  changed();
}

function keepVm(vm) {
  const key = vmKey(vm.host, vm.name);
  vms.set(key, { ...vms.get(key), ...vm, stale: false });
  return key;
}

export async function loadVms(host, offset = 0) {
  const query = new URLSearchParams({ host, limit: String(PAGE), offset: String(offset) });
  const reply = await latest(`vms:${host}@${offset}`, `/vms?${query}`);
  if (!reply) return;
  const list = offset === 0 ? { names: [], total: 0 } : vmLists.get(host) || { names: [] };
  for (const vm of reply.items) keepVm(vm);
  list.names = list.names.concat(reply.items.map((vm) => vm.name));
  list.total = reply.total;
  vmLists.set(host, list);
  changed();
}

export async function loadContainers(host, vm) {
  const query = new URLSearchParams({ host, vm, limit: "1000" });
  const reply = await latest(`containers:${host}/${vm}`, `/containers?${query}`);
  if (!reply) return;
  for (const c of reply.items) {
    const key = containerKey(host, vm, c.name);
    containers.set(key, { ...containers.get(key), ...c, host, vm, stale: false });
  }
  containerLists.set(vmKey(host, vm), { names: reply.items.map((c) => c.name),
                                        total: reply.total });
  changed();
}

export async function loadSearch(q, offset = 0) {
  const query = new URLSearchParams({ q, limit: String(PAGE), offset: String(offset) });
  const reply = await latest("search", `/vms?${query}`);
  if (!reply) return;
  const keys = reply.items.map(keepVm);
  search.keys = offset === 0 ? keys : search.keys.concat(keys);
  search.total = reply.total;
  search.q = q;
  changed();
}

// One object's full view (a VM's allowed actions and containers, a host's info): the
// details pane's, under one key so that a newer selection wins.
export async function loadDetail(parsed) {
  if (parsed.kind === "host") {
    const host = await latest("detail", `/hosts/${enc(parsed.host)}`);
    if (host) { hosts.set(host.name, { ...hosts.get(host.name), ...host }); changed(); }
    return host;
  }
  if (parsed.kind === "vm") {
    const vm = await latest("detail", `/vms/${enc(parsed.host, parsed.vm)}`);
    if (!vm) return null;
    vm.container_count = vm.containers.length;
    keepVm(vm);
    for (const c of vm.containers) {
      const key = containerKey(vm.host, vm.name, c.name);
      containers.set(key, { ...containers.get(key), ...c, host: vm.host, vm: vm.name,
                            stale: false });
    }
    containerLists.set(vmKey(vm.host, vm.name), { names: vm.containers.map((c) => c.name),
                                                  total: vm.containers.length });
    changed();
    return vm;
  }
  await loadContainers(parsed.host, parsed.vm);
  return containers.get(containerKey(parsed.host, parsed.vm, parsed.name)) || null;
}

export async function loadTasks() {
  const recent = await api("/tasks?limit=20");
  for (const task of recent.items) tasks.set(task.id, task);
  changed();
}

export function trackTask(task) {
  if (task && task.id !== undefined) { tasks.set(task.id, { ...tasks.get(task.id), ...task }); changed(); }
}

// -- live events ------------------------------------------------------------------------------
const insertSorted = (names, name) => {
  const at = names.findIndex((other) => other > name);
  return at < 0 ? [...names, name] : [...names.slice(0, at), name, ...names.slice(at)];
};

function adjust(map, key, field, by) {
  const object = map.get(key);
  if (object && typeof object[field] === "number") object[field] = Math.max(0, object[field] + by);
}

function vmAdded(host, name, data) {
  const key = vmKey(host, name);
  vms.set(key, { host, name, power_state: data.power_state, addresses: data.addresses || [],
                 labels: {}, container_count: 0, ...vms.get(key) });
  adjust(hosts, host, "vm_count", 1);
  const list = vmLists.get(host);
  if (list && !list.names.includes(name)) {
    // Past the pages shown, it waits for "more"; otherwise it takes its place in the order.
    const last = list.names[list.names.length - 1];
    if (list.names.length >= list.total || name < last) list.names = insertSorted(list.names, name);
    list.total += 1;
  }
}

function vmRemoved(host, name) {
  vms.delete(vmKey(host, name));
  adjust(hosts, host, "vm_count", -1);
  const list = vmLists.get(host);
  if (list && list.names.includes(name)) {
    list.names = list.names.filter((other) => other !== name);
    list.total = Math.max(0, list.total - 1);
  }
  search.keys = search.keys.filter((key) => key !== vmKey(host, name));
}

function containerChanged(kind, host, vm, name, data) {
  const key = containerKey(host, vm, name);
  const parent = vmKey(host, vm);
  const list = containerLists.get(parent);
  if (kind === "container.removed") {
    containers.delete(key);
    adjust(vms, parent, "container_count", -1);
    if (list) list.names = list.names.filter((other) => other !== name);
    return;
  }
  const known = containers.get(key);
  // Its allowed actions were for its old state: the details pane asks again (`stale`).
  containers.set(key, { host, vm, name, ports: [], ...known, ...data, stale: true });
  if (kind === "container.added" && !known) {
    adjust(vms, parent, "container_count", 1);
    if (list && !list.names.includes(name)) list.names = insertSorted(list.names, name);
  }
}

// Apply one event from the stream; what it names, as a tree key (or null).
export function applyEvent(event) {
  const { kind, object_name: name, data } = event;
  const parts = name.split("/");
  let key = null;
  if (kind.startsWith("task.")) {
    const id = Number(name);
    const task = tasks.get(id) || { id, kind: data.kind || "task", object_name: data.object_name || "" };
    for (const field of ["state", "progress", "message", "error"]) {
      if (data[field] !== undefined) task[field] = data[field];
    }
    if (data.state === "succeeded") { task.progress = 100; task.message = "done"; }
    tasks.set(id, { ...task });
  } else if (kind === "host.added") {
    hosts.set(name, { name, state: "unknown", uri: data.uri, vm_count: 0, info: {}, ...hosts.get(name) });
    if (!hostList.names.includes(name)) {
      hostList.names = insertSorted(hostList.names, name);
      hostList.total += 1;
    }
    key = hostKey(name);
  } else if (kind === "host.removed") {
    hosts.delete(name);
    hostList.names = hostList.names.filter((other) => other !== name);
    hostList.total = Math.max(0, hostList.total - 1);
    key = hostKey(name);
  } else if (kind === "host.state") {
    const host = hosts.get(name);
    if (host) hosts.set(name, { ...host, state: data.state, error: data.error || null });
    key = hostKey(name);
  } else if (kind.startsWith("vm.") && parts.length === 2) {
    const [host, vm] = parts;
    key = vmKey(host, vm);
    if (kind === "vm.added") vmAdded(host, vm, data);
    else if (kind === "vm.removed") vmRemoved(host, vm);
    else if (vms.has(key)) {
      const patch = kind === "vm.state"
        ? { power_state: data.power_state, addresses: data.addresses || [] }
        : { containers_error: data.error || null };
      vms.set(key, { ...vms.get(key), ...patch, stale: true });
    }
  } else if (kind.startsWith("container.") && parts.length === 3) {
    const [host, vm, container] = parts;
    containerChanged(kind, host, vm, container, data);
    key = containerKey(host, vm, container);
  }
  changed();
  return key;
}
