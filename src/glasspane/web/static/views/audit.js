// The audit trail (admins): who did what, from where, with what outcome.
import { html, useEffect, useRef, useState } from "../lib.js";
import { Badge, stamp } from "../lib.js";
import { api } from "../api.js";
import { can } from "../store.js";
import { finished } from "../events.js";

export function AuditView() {
  const user = useRef(null);
  const action = useRef(null);
  const [entries, setEntries] = useState({ items: [], total: 0 });
  const [error, setError] = useState("");
  const load = () => {
    if (!can("admin")) return;
    const query = new URLSearchParams({ limit: "200" });
    if (user.current && user.current.value.trim()) query.set("user", user.current.value.trim());
    if (action.current && action.current.value.trim()) query.set("action", action.current.value.trim());
    api(`/audit?${query}`).then((found) => { setEntries(found); setError(""); })
      .catch((exc) => setError(exc.message));
  };
  useEffect(load, [finished.value]);
  return html`<section id="audit-view" class="view page">
    <h1>Audit trail</h1>
    <div class="toolbar">
      <input id="audit-user" ref=${user} placeholder="User" aria-label="User" />
      <input id="audit-action" ref=${action} placeholder="Action (e.g. vm.create)" aria-label="Action" />
      <button id="audit-refresh" onClick=${load}>Refresh</button>
      <span id="audit-total" class="muted">${entries.items.length} of ${entries.total}</span>
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <table id="audit"><thead><tr><th>When</th><th>User</th><th>Action</th><th>Object</th>
      <th>Outcome</th><th>Status</th><th>From</th><th>Detail</th></tr></thead><tbody>
      ${entries.items.map((a) => html`<tr key=${a.id} data-audit=${a.id}><td>${stamp(a.at)}</td>
        <td>${a.user}</td><td>${a.action}</td><td>${a.object_type} ${a.object_name}</td>
        <td><${Badge} value=${a.outcome} /></td><td>${a.status_code}</td><td>${a.address || ""}</td>
        <td>${a.count > 1 ? `×${a.count}: ${a.detail}` : a.detail}</td></tr>`)}
    </tbody></table>
  </section>`;
}
