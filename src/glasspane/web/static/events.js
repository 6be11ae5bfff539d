// The server's event stream (Server-Sent Events, resumed by the browser with Last-Event-ID):
// each event patches the store. `finished` counts finished tasks, for the views whose lists
// a task changes (the image store, the audit trail).
import { signal } from "./lib.js";
import { API } from "./api.js";
import { applyEvent, live } from "./store.js";

export const finished = signal(0);
const KINDS = ["task.created", "task.progress", "task.finished", "host.state", "host.added",
               "host.removed", "vm.state", "vm.added", "vm.removed", "vm.containers_error",
               "container.state", "container.added", "container.removed"];
let source = null;

export function connect() {
  if (source) return;
  source = new EventSource(`${API}/events`);
  source.onopen = () => { live.value = "live"; };
  source.onerror = () => { live.value = "reconnecting"; };
  const onEvent = (message) => {
    const event = JSON.parse(message.data);
    applyEvent(event);
    if (event.kind === "task.finished") finished.value += 1;
  };
  for (const kind of KINDS) source.addEventListener(kind, onEvent);
}

export function disconnect() {
  if (source) { source.close(); source = null; }
  live.value = "offline";
}
