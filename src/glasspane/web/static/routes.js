// The place in the URL: the view, the selected object (its tree key), the details tab and the
// filter, as query parameters of "/". A selection or a view is a history entry (back returns
// to it); typing a filter or picking a tab replaces the entry. Reload and shared links start
// from the same place.
import { signal } from "./lib.js";

const KEYS = ["view", "sel", "tab", "q"];
const DEFAULTS = { view: "inventory", sel: "", tab: "overview", q: "" };

function read() {
  const query = new URLSearchParams(window.location.search);
  return Object.fromEntries(KEYS.map((key) => [key, query.get(key) || DEFAULTS[key]]));
}

export const route = signal(read());

function write(next, push) {
  const query = new URLSearchParams();
  for (const key of KEYS) if (next[key] && next[key] !== DEFAULTS[key]) query.set(key, next[key]);
  const text = query.toString();
  const url = `${window.location.pathname}${text ? `?${text}` : ""}`;
  if (push) window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
  route.value = next;
}

// Change part of the place; `push`: a new history entry (a selection, a view), else in place.
export function go(change, push = true) {
  const next = { ...route.value, ...change };
  if (KEYS.every((key) => next[key] === route.value[key])) return;
  write(next, push);
}

window.addEventListener("popstate", () => { route.value = read(); });

// A tree key ("vm:local/web-1") as its parts.
export function parseKey(key) {
  const at = key.indexOf(":");
  if (at < 0) return null;
  const kind = key.slice(0, at);
  const parts = key.slice(at + 1).split("/").map(decodeURIComponent);
  if (kind === "host" && parts.length === 1) return { kind, host: parts[0] };
  if (kind === "vm" && parts.length === 2) return { kind, host: parts[0], vm: parts[1] };
  if (kind === "container" && parts.length === 3) {
    return { kind, host: parts[0], vm: parts[1], name: parts[2] };
  }
  return null;
}

// Each name escaped: a XenServer VM's name may hold a "/".
const part = encodeURIComponent;
export const hostKey = (host) => `host:${part(host)}`;
export const vmKey = (host, vm) => `vm:${part(host)}/${part(vm)}`;
export const containerKey = (host, vm, name) => `container:${part(host)}/${part(vm)}/${part(name)}`;
