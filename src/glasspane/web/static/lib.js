// The component library, from vendor/ (made by `make` from the npm lock file; never edited
// by hand): Preact's components and hooks, htm's tagged templates, and signals.
import { h, render, Fragment } from "./vendor/preact.js";
import htm from "./vendor/htm.js";

export { h, render, Fragment };
export { useEffect, useLayoutEffect, useRef, useState, useMemo, useCallback, useId }
  from "./vendor/hooks.js";
export { signal, computed, effect, batch, useSignal, useComputed, useSignalEffect }
  from "./vendor/signals.js";
// Templates are text (no build step); htm turns them into Preact elements. Values are
// never parsed as HTML: names that come from guests are shown as text.
export const html = htm.bind(h);

export function human(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

// "a=1, b=2" (or spaces) as an object; a key without "=" maps to "".
export function parsePairs(text) {
  return Object.fromEntries(text.split(/[\s,]+/).filter(Boolean).map((pair) => {
    const at = pair.indexOf("=");
    return at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
  }));
}

export const stamp = (text) => (text ? text.replace("T", " ").slice(0, 19) : "–");
export const Badge = ({ value }) => html`<span class=${`badge ${value}`}>${value}</span>`;
