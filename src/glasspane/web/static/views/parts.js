// What the details panes share: a list of fields, a tab's panel.
import { html } from "../lib.js";

export function Fields({ rows }) {
  return html`<dl>${rows.map(([name, value]) => html`<dt>${name}</dt>
    <dd>${value === null || value === undefined || value === "" ? "–" : value}</dd>`)}</dl>`;
}

export const Panel = ({ tab, children }) => html`<section id="tab-panel" role="tabpanel"
  aria-labelledby=${`tab-${tab}`} data-panel=${tab}>${children}</section>`;
