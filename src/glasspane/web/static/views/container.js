// A container: its fields, its actions (the server's `actions`) and the end of its logs.
import { html, useState } from "../lib.js";
import { Badge } from "../lib.js";
import { enc } from "../api.js";
import { tasks } from "../store.js";
import { ActionBar, CONTAINER_ACTIONS } from "../actions.js";
import { Fields, Panel } from "./parts.js";
import { useRead } from "./fetch.js";
import { TaskTable } from "./tasks.js";

export function ContainerPane({ object: c, tab, tabs }) {
  const [again, setAgain] = useState(0);
  const logs = useRead("logs", `/containers/${enc(c.host, c.vm, c.name)}/logs?tail=200`, again);
  const name = `${c.host}/${c.vm}/${c.name}`;
  return html`<h1>Container ${c.name}</h1>
    <${ActionBar} object=${c} actions=${CONTAINER_ACTIONS} />
    ${tabs}
    <${Panel} tab=${tab}>
      ${tab === "overview" && html`<${Fields} rows=${[["VM", `${c.host}/${c.vm}`],
        ["state", html`<${Badge} value=${c.state} />`], ["status", c.status], ["image", c.image],
        ["ports", (c.ports || []).join(", ")], ["app", c.app], ["id", c.id], ["created", c.created]]} />
        <h2>Logs</h2>
        <button onClick=${() => setAgain(again + 1)}>Refresh logs</button>
        <pre id="logs">${logs.error || (logs.data === null ? "…" : logs.data || "(no output)")}</pre>`}
      ${tab === "tasks" && html`<${TaskTable} tasks=${[...tasks.values()].filter((t) =>
        t.object_name === name || t.object_name === `${c.host}/${c.vm}`)} />`}
    <//>`;
}
