// The inventory as an ARIA tree (hosts, their VMs, the VMs' containers). Selection and
// expansion are apart: a click or Enter selects a row (and opens it, never closes it); the
// twisty, the arrow keys and "*" open and close. Rows are keyed by object, so a live update
// changes a badge in place and the focused row keeps the focus. One row is in the tab order
// (the focused one, else the selected one); arrow keys, Home, End and type-ahead move it.
import { html, signal, useLayoutEffect, useRef } from "./lib.js";
import { Badge } from "./lib.js";
import {
  containerLists, containers, hostList, hosts, loadContainers, loadHosts, loadSearch, loadVms,
  search, version, vmLists, vms,
} from "./store.js";
import { containerKey, go, hostKey, parseKey, route, vmKey } from "./routes.js";

const SAVED = "glasspane.expanded";
export const expanded = signal(new Set(JSON.parse(sessionStorage.getItem(SAVED) || "[]")));
const focused = signal("");

function load(key) {
  const parsed = parseKey(key);
  if (!parsed) return;
  if (parsed.kind === "host" && !vmLists.has(parsed.host)) loadVms(parsed.host).catch(() => {});
  if (parsed.kind === "vm" && !containerLists.has(key)) {
    loadContainers(parsed.host, parsed.vm).catch(() => {});
  }
}

export function setExpanded(key, open) {
  if (expanded.value.has(key) === open) { if (open) load(key); return; }
  const next = new Set(expanded.value);
  if (open) next.add(key); else next.delete(key);
  expanded.value = next;
  sessionStorage.setItem(SAVED, JSON.stringify([...next]));
  if (open) load(key);
}

// The rows of the selected object's parents opened, so it shows (a shared link, a reload).
export function reveal(key) {
  const parsed = parseKey(key);
  if (!parsed || parsed.kind === "host") return;
  setExpanded(hostKey(parsed.host), true);
  if (parsed.kind === "container") setExpanded(vmKey(parsed.host, parsed.vm), true);
}

function vmRows(host, names, level, rows) {
  for (const name of names) {
    const key = vmKey(host, name);
    const vm = vms.get(key);
    if (!vm) continue;
    const open = expanded.value.has(key);
    rows.push({ key, kind: "vm", level, label: name, status: vm.power_state,
                expandable: (vm.container_count ?? 0) > 0, open });
    if (!open) continue;
    for (const c of (containerLists.get(key) || { names: [] }).names) {
      const child = containers.get(containerKey(host, name, c));
      if (child) {
        rows.push({ key: containerKey(host, name, c), kind: "container", level: level + 1,
                    label: c, status: child.state });
      }
    }
  }
}

function hostRow(name, rows, open) {
  const host = hosts.get(name) || { name };
  const label = host.vm_count === undefined ? name : `${name} (${host.vm_count})`;
  rows.push({ key: hostKey(name), kind: "host", level: 1, label, status: host.state,
              expandable: true, open });
}

// The visible rows, in order, for the current filter.
function visibleRows() {
  const rows = [];
  if (route.value.q) {
    const byHost = new Map();
    for (const key of search.keys) {
      const vm = vms.get(key);
      if (vm) byHost.set(vm.host, [...(byHost.get(vm.host) || []), vm.name]);
    }
    for (const [host, names] of byHost) {
      hostRow(host, rows, true);
      vmRows(host, names, 2, rows);
    }
    if (search.keys.length < search.total) {
      rows.push({ key: "more:search", kind: "more", level: 1,
                  label: `${search.total - search.keys.length} more…` });
    }
    return rows;
  }
  for (const name of hostList.names) {
    const open = expanded.value.has(hostKey(name));
    hostRow(name, rows, open);
    const list = vmLists.get(name);
    if (!open || !list) continue;
    vmRows(name, list.names, 2, rows);
    if (list.names.length < list.total) {
      rows.push({ key: `more:${hostKey(name)}`, kind: "more", level: 2, host: name,
                  label: `${list.total - list.names.length} more…` });
    }
  }
  if (hostList.names.length < hostList.total) {
    rows.push({ key: "more:hosts", kind: "more", level: 1,
                label: `${hostList.total - hostList.names.length} more hosts…` });
  }
  return rows;
}

function loadMore(row) {
  if (row.key === "more:hosts") loadHosts(hostList.names.length);
  else if (row.key === "more:search") loadSearch(route.value.q, search.keys.length);
  else loadVms(row.host, vmLists.get(row.host).names.length);
}

function choose(row) {
  if (row.kind === "more") { loadMore(row); return; }
  focused.value = row.key;
  if (row.expandable) setExpanded(row.key, true);
  go({ sel: row.key, view: "inventory" });
}

const TYPE_AHEAD_MS = 600;

// The rows and the one in the tab order (the focused row while it is shown, else the
// selection's), as they are now: keys typed faster than the page renders act on these.
function now() {
  const rows = visibleRows();
  const keys = rows.map((row) => row.key);
  let current = keys.includes(focused.value) ? focused.value : "";
  if (!current) current = keys.includes(route.value.sel) ? route.value.sel : keys[0] || "";
  return { rows, keys, current };
}

export function Tree() {
  version.value;  // eslint-disable-line no-unused-expressions -- re-render on store changes
  const list = useRef(null);
  const typed = useRef({ text: "", at: 0 });
  const { rows, current } = now();
  const selected = route.value.sel;

  useLayoutEffect(() => {
    // Focus follows `focused` only while the tree holds it (never stolen from elsewhere), to
    // the row that is current now: a key pressed since this render may have moved it on.
    const tree = list.current;
    if (!tree || !tree.contains(document.activeElement)) return;
    const row = tree.querySelector(`[data-key="${CSS.escape(now().current)}"]`);
    if (row && row !== document.activeElement) row.focus();
  });

  const moveTo = (key) => {
    if (!key) return;
    focused.value = key;
    // At once, not after the render: the next key goes to the row it moved to.
    list.current.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
  };
  const onKeyDown = (event) => {
    const { rows, keys, current } = now();
    const at = keys.indexOf(current);
    const row = rows[at];
    if (!row) return;
    const parentOf = () => {
      for (let i = at - 1; i >= 0; i -= 1) if (rows[i].level < row.level) return rows[i].key;
      return "";
    };
    switch (event.key) {
      case "ArrowDown": moveTo(keys[Math.min(at + 1, keys.length - 1)]); break;
      case "ArrowUp": moveTo(keys[Math.max(at - 1, 0)]); break;
      case "Home": moveTo(keys[0]); break;
      case "End": moveTo(keys[keys.length - 1]); break;
      case "ArrowRight":
        if (row.expandable && !row.open) setExpanded(row.key, true);
        else if (row.open && rows[at + 1] && rows[at + 1].level > row.level) moveTo(keys[at + 1]);
        break;
      case "ArrowLeft":
        if (row.open && !route.value.q) setExpanded(row.key, false);
        else moveTo(parentOf());
        break;
      case "Enter": case " ": choose(row); break;
      case "*":
        for (const other of rows) {
          if (other.level === row.level && other.expandable) setExpanded(other.key, true);
        }
        break;
      default:
        if (event.key.length !== 1 || event.ctrlKey || event.metaKey || event.altKey) return;
        typeAhead(event.key, rows, keys.indexOf(current));
    }
    event.preventDefault();
  };

  // Letters typed in quick succession: the next row whose name starts with them.
  const typeAhead = (letter, rows, at) => {
    const time = Date.now();
    const t = typed.current;
    t.text = time - t.at > TYPE_AHEAD_MS ? letter : t.text + letter;
    t.at = time;
    const text = t.text.toLowerCase();
    const order = [...rows.slice(at + (t.text.length === 1 ? 1 : 0)), ...rows.slice(0, at)];
    const found = order.find((row) => row.kind !== "more" && row.label.toLowerCase().startsWith(text));
    if (found) moveTo(found.key);
  };

  return html`<ul id="tree" role="tree" aria-label="Inventory" ref=${list} onKeyDown=${onKeyDown}>
    ${rows.map((row) => html`<${Row} key=${row.key} row=${row} selected=${row.key === selected}
                                     current=${row.key === current} />`)}
  </ul>`;
}

function Row({ row, selected, current }) {
  const toggle = (event) => {
    event.stopPropagation();
    setExpanded(row.key, !row.open);
  };
  const classes = `node level-${row.level}${selected ? " selected" : ""}${row.kind === "more" ? " more" : ""}`;
  return html`<li class=${classes} role="treeitem" data-key=${row.key} data-kind=${row.kind}
      aria-level=${row.level} aria-selected=${row.kind === "more" ? undefined : String(selected)}
      aria-expanded=${row.expandable ? String(!!row.open) : undefined}
      tabindex=${current ? "0" : "-1"} onClick=${() => choose(row)}
      onFocus=${() => { focused.value = row.key; }}>
    <span class="toggle" aria-hidden="true" onClick=${row.expandable ? toggle : undefined}
      >${row.expandable ? (row.open ? "▾" : "▸") : ""}</span>
    ${row.kind !== "more" && html`<span class="kind">${row.kind}</span>`}
    <span class="label">${row.label}</span>
    <span class="status">${row.status && html`<${Badge} value=${row.status} />`}</span>
  </li>`;
}
