// Copies the page's components from node_modules (what `npm ci` installed from the lock file)
// into src/glasspane/web/static/vendor/, each an ES module the browser loads as it is. The
// bare names they import ("preact", "preact/hooks") become relative paths: an import map would
// be an inline script, which the page's Content-Security-Policy forbids.
import { mkdirSync, readFileSync, readdirSync, writeFileSync, rmSync, renameSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const target = join(here, "..", "src", "glasspane", "web", "static", "vendor");
const FILES = {
  "preact.js": "preact/dist/preact.mjs",
  "hooks.js": "preact/hooks/dist/hooks.mjs",
  "htm.js": "htm/dist/htm.mjs",
  "signals-core.js": "@preact/signals-core/dist/signals-core.mjs",
  "signals.js": "@preact/signals/dist/signals.mjs",
  // The Console tab's, loaded only when it opens: xterm.js (the serial console) and its fit
  // addon, whole ES modules with no imports of their own.
  "xterm.js": "@xterm/xterm/lib/xterm.mjs",
  "xterm-fit.js": "@xterm/addon-fit/lib/addon-fit.mjs",
  "xterm.css": "@xterm/xterm/css/xterm.css",
};
// noVNC (the screen) ships its ES modules as a tree (core/ importing ../vendor/pako/): copied
// as it is, under novnc/, so its relative imports still hold.
const TREES = { "novnc/core": "@novnc/novnc/core", "novnc/vendor/pako/lib": "@novnc/novnc/vendor/pako/lib" };
const NAMES = { "preact": "./preact.js", "preact/hooks": "./hooks.js",
                "@preact/signals-core": "./signals-core.js" };

// Written beside, then swapped in whole: a page served meanwhile never sees half a vendor dir.
const staging = `${target}.new`;
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
for (const [name, source] of Object.entries(FILES)) {
  let text = readFileSync(join(modules, source), "utf8");
  text = text.replace(/from\s*"([^"]+)"/g, (whole, spec) => {
    if (spec.startsWith(".")) return whole;
    if (!(spec in NAMES)) throw new Error(`${source} imports ${spec}: add it to vendor.mjs`);
    return `from"${NAMES[spec]}"`;
  });
  text = text.replace(/\n\/\/# sourceMappingURL=[^\n]*\n?$/, "\n");  // the maps are not copied
  writeFileSync(join(staging, name), text);
}
const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
  entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)]);
for (const [into, source] of Object.entries(TREES)) {
  const root = join(modules, source);
  for (const file of walk(root).filter((path) => path.endsWith(".js"))) {
    const text = readFileSync(file, "utf8");
    const specs = [...text.matchAll(/^\s*(?:(?:import|export)\s[^;'"]*?\bfrom|import)\s*['"]([^'"]+)['"]/gm)];
    const bare = specs.map((match) => match[1]).find((spec) => !spec.startsWith("."));
    if (bare) throw new Error(`${file} imports ${bare}: vendor.mjs copies relative imports only`);
    const out = join(staging, into, relative(root, file));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, text);
  }
}
rmSync(target, { recursive: true, force: true });
renameSync(staging, target);
