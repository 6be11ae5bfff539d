// The inventory view: the filter and the tree on the left, the selection's details.
import { html, useEffect, useRef } from "../lib.js";
import { loadSearch } from "../store.js";
import { go, route } from "../routes.js";
import { reveal, Tree } from "../tree.js";
import { Details } from "./details.js";

const FILTER_DELAY_MS = 250;

export function InventoryView() {
  const { q, sel } = route.value;
  const timer = useRef(null);
  useEffect(() => { if (q) loadSearch(q).catch(() => {}); }, [q]);
  useEffect(() => { if (sel && !q) reveal(sel); }, [sel, q]);
  const onInput = (event) => {
    clearTimeout(timer.current);
    const value = event.target.value.trim();
    timer.current = setTimeout(() => go({ q: value }, false), FILTER_DELAY_MS);
  };
  return html`<main id="inventory-view" class="view">
    <nav aria-label="Inventory">
      <input id="filter" type="search" placeholder="Filter VMs by name" aria-label="Filter"
        defaultValue=${q} onInput=${onInput} />
      <${Tree} />
    </nav>
    <${Details} />
  </main>`;
}
