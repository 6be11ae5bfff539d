// The details pane: the selected object's (in the URL) title, actions and tabs. Each kind
// names its tabs; later views (graphs, consoles, hardware) fill a tab, not a new page. The
// object is read again from the server when selected and whenever an event made it `stale`
// (its allowed actions follow its state); a newer selection's reply always wins.
import { html, useEffect, useRef } from "../lib.js";
import { containers, hosts, loadDetail, version, vms } from "../store.js";
import { containerKey, go, parseKey, route, vmKey } from "../routes.js";
import { HostPane } from "./host.js";
import { VmPane, VM_TABS } from "./vm.js";
import { ContainerPane } from "./container.js";

const TABS = { host: [["overview", "Overview"], ["tasks", "Tasks"]], vm: VM_TABS,
               container: [["overview", "Overview"], ["tasks", "Tasks"]] };

function objectOf(parsed) {
  if (parsed.kind === "host") return hosts.get(parsed.host);
  if (parsed.kind === "vm") return vms.get(vmKey(parsed.host, parsed.vm));
  return containers.get(containerKey(parsed.host, parsed.vm, parsed.name));
}

export function Details() {
  version.value;  // eslint-disable-line no-unused-expressions -- re-render on store changes
  const { sel, tab } = route.value;
  const parsed = sel ? parseKey(sel) : null;
  const object = parsed ? objectOf(parsed) : null;
  const asked = useRef({ key: "", error: "" });

  useEffect(() => {
    if (!parsed) return;
    asked.current = { key: sel, error: "" };
    loadDetail(parsed).catch((exc) => { asked.current = { key: sel, error: exc.message }; version.value += 1; });
  }, [sel]);
  useEffect(() => {
    if (parsed && object && object.stale) loadDetail(parsed).catch(() => {});
  }, [sel, object && object.stale]);

  if (!parsed) {
    return html`<article id="details"><p class="muted">Select a host, a VM or a container.</p></article>`;
  }
  if (!object) {
    const error = asked.current.key === sel && asked.current.error;
    return html`<article id="details"><p class=${error ? "error" : "muted"}>${error || "…"}</p></article>`;
  }
  const tabs = TABS[parsed.kind];
  const shown = tabs.some(([name]) => name === tab) ? tab : "overview";
  const Pane = { host: HostPane, vm: VmPane, container: ContainerPane }[parsed.kind];
  return html`<article id="details" aria-live="off">
    <${Pane} object=${object} tab=${shown} tabs=${html`<${Tabs} tabs=${tabs} shown=${shown} />`} />
  </article>`;
}

// ARIA tabs: the arrow keys move between them; the chosen one is in the URL.
function Tabs({ tabs, shown }) {
  const onKeyDown = (event) => {
    const at = tabs.findIndex(([name]) => name === shown);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const [next] = tabs[(at + step + tabs.length) % tabs.length];
    go({ tab: next }, false);
    event.preventDefault();
    requestAnimationFrame(() => document.getElementById(`tab-${next}`)?.focus());
  };
  return html`<div class="tabs" role="tablist" aria-label="Details" onKeyDown=${onKeyDown}>
    ${tabs.map(([name, label]) => html`<button key=${name} id=${`tab-${name}`} role="tab"
      aria-selected=${String(name === shown)} aria-controls="tab-panel" data-tab=${name}
      tabindex=${name === shown ? "0" : "-1"} onClick=${() => go({ tab: name }, false)}>${label}</button>`)}
  </div>`;
}
