// The page: a tree of hosts, their VMs and the VMs' containers, the selection's details with
// its actions, the image store, the audit trail and a task drawer, kept live by the server's
// event stream. Preact components (vendor/, made by `make` from the npm lock file); the
// store (store.js) holds the objects, the URL (routes.js) the place.
import { html, render, signal } from "./lib.js";
import { whenLoggedOut, api } from "./api.js";
import { loadHosts, loadTasks, user } from "./store.js";
import { route } from "./routes.js";
import { connect, disconnect } from "./events.js";
import { Dialogs } from "./forms.js";
import { notice } from "./actions.js";
import { Header } from "./views/header.js";
import { Login } from "./views/login.js";
import { InventoryView } from "./views/inventory.js";
import { ImagesView } from "./views/images.js";
import { AuditView } from "./views/audit.js";
import { Drawer } from "./views/tasks.js";
import { ConsoleView } from "./views/console.js";
import "./theme.js";

const checked = signal(false);  // whether /auth/me has answered once (no login flash)

async function start() {
  // The first hosts asked for beside who is logged in, not after: the first screen sooner.
  const hosts = loadHosts().catch(() => {});
  user.value = await api("/auth/me");
  checked.value = true;
  connect();
  await Promise.all([hosts, loadTasks()]);
}

whenLoggedOut(() => { disconnect(); user.value = null; });

// Always there (hidden when empty): the pane's grid has a row for it.
function Notice() {
  return html`<p id="notice" role="status" hidden=${!notice.value}>${notice.value}
    <button aria-label="Dismiss" onClick=${() => { notice.value = ""; }}>×</button></p>`;
}

function App() {
  // After a login the page starts afresh: nothing of another user's (their allowed actions)
  // stays in the store.
  if (!user.value) {
    return checked.value ? html`<${Login} started=${() => window.location.reload()} />` : null;
  }
  const view = route.value.view;
  if (view === "console") return html`<${ConsoleView} />`;  // a console's own window
  return html`<section id="pane">
    <${Header} />
    <${Notice} />
    ${view === "images" ? html`<${ImagesView} />`
      : view === "audit" ? html`<${AuditView} />` : html`<${InventoryView} />`}
    <${Drawer} />
    <${Dialogs} />
  </section>`;
}

render(html`<${App} />`, document.getElementById("app"));
start().catch(() => { checked.value = true; });
