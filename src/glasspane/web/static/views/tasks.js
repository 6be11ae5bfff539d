// Tasks: the drawer of the latest, kept live by the event stream, and a table of an
// object's own in its details.
import { html, useEffect } from "../lib.js";
import { Badge, stamp } from "../lib.js";
import { latest } from "../api.js";
import { tasks, trackTask, version } from "../store.js";

const newestFirst = (list) => [...list].sort((a, b) => b.id - a.id);

export function Drawer() {
  version.value;  // eslint-disable-line no-unused-expressions -- re-render on store changes
  const rows = newestFirst(tasks.values()).slice(0, 50);
  return html`<footer id="drawer"><h2>Tasks</h2><ul id="tasks" aria-live="polite">
    ${rows.map((t) => html`<li key=${t.id} data-task=${t.id} data-state=${t.state}>
      <span>#${t.id}</span>
      <span title=${`${t.kind} ${t.object_name}`}>${t.kind} ${t.object_name}</span>
      <progress max="100" value=${String(t.progress || 0)}></progress>
      ${t.error ? html`<span class="error">${t.error}</span>`
        : html`<span class="muted">${t.state === "succeeded" ? "done" : t.message || ""}</span>`}
      <${Badge} value=${t.state} />
    </li>`)}
  </ul></footer>`;
}

// An object's tasks: those of the store, after the latest 200 are read into it (the drawer
// holds the 20 latest and what happened since the page was opened).
export function TaskTable({ tasks: list }) {
  useEffect(() => {
    latest("tasks", "/tasks?limit=200").then((found) => {
      if (found) for (const task of found.items) if (!tasks.has(task.id)) trackTask(task);
    }).catch(() => {});
  }, []);
  if (!list.length) return html`<p class="muted">No tasks among the latest.</p>`;
  return html`<table class="tasks"><thead><tr><th>#</th><th>Task</th><th>State</th><th>Progress</th>
    <th>By</th><th>At</th><th>Error</th></tr></thead><tbody>
    ${newestFirst(list).map((t) => html`<tr key=${t.id} data-task=${t.id}><td>${t.id}</td>
      <td>${t.kind} ${t.object_name}</td><td><${Badge} value=${t.state} /></td>
      <td>${t.progress ?? 0}%</td><td>${t.created_by || ""}</td><td>${stamp(t.created_at)}</td>
      <td class="error">${t.error || ""}</td></tr>`)}
  </tbody></table>`;
}
