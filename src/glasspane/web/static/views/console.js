// The Console tab (and its pop-out window, ?view=console): the VM's serial console in xterm.js
// and its screen in noVNC, each on its WebSocket with a one-time ticket (POST
// .../console/tickets, operation console.ticket: offered to operators on a running VM), and the
// serial log as history. The components are loaded when the tab first opens, not with the page.
import { html, useEffect, useRef, useState } from "../lib.js";
import { api, enc } from "../api.js";
import { can, changed, loadDetail, version, vms } from "../store.js";
import { go, parseKey, route, vmKey } from "../routes.js";
import { useRead } from "./fetch.js";

export const SUBVIEWS = [["serial", "Serial"], ["screen", "Screen"], ["log", "Log"]];
const SOCKET = { serial: "serial", screen: "vnc" };
// Waits before asking for a new ticket after the screen's socket ended (the VM rebooting on
// a host that makes it anew); a refusal (409: not running) stops them: the VM's state, kept by
// the event stream, reconnects it when it runs again.
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 8000];
// X11 keysyms the screen's paste needs beyond printable Latin-1 (which are their code points).
const KEYSYM = { "\n": 0xff0d, "\r": 0xff0d, "\t": 0xff09, shift: 0xffe1 };
// Printable ASCII typed with Shift on a US keyboard (QEMU maps a keysym to a key, not to Shift).
const SHIFTED = /[A-Z~!@#$%^&*()_+{}|:"<>?]/;

const cssLoaded = new WeakSet();
function loadCss(doc) {
  if (cssLoaded.has(doc)) return;
  cssLoaded.add(doc);
  const link = doc.createElement("link");
  link.rel = "stylesheet";
  link.href = "/static/vendor/xterm.css";
  doc.head.appendChild(link);
}

// xterm.js writes its sizes and colours into <style> elements (while opening, and later, even
// after a terminal is disposed, from its timers), which the page's CSP (no inline style)
// refuses, reporting each. Once a terminal is shown in a document, a <style> asked of it is an
// inert <glasspane-style> (hidden by style.css; xterm only sets its text and removes it), and
// that text is applied through a constructed style sheet, which CSP does not govern (CSSOM).
// This grants nothing to injected markup (never made by createElement), and the page makes no
// <style> of its own.
const adopting = new WeakSet();
function adoptStyles(doc) {
  if (adopting.has(doc)) return;
  adopting.add(doc);
  const sheet = new doc.defaultView.CSSStyleSheet();
  doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
  const styles = new Set();
  const sync = () => {
    for (const style of styles) if (style.dataset.shown && !style.isConnected) styles.delete(style);
    for (const style of styles) if (style.isConnected) style.dataset.shown = "1";
    sheet.replaceSync([...styles].map((style) => style.textContent).join("\n"));
  };
  const observer = new MutationObserver(sync);
  const make = doc.createElement;
  doc.createElement = function createElement(name, options) {
    if (String(name).toLowerCase() !== "style") return make.call(this, name, options);
    const element = make.call(this, "glasspane-style");
    styles.add(element);
    observer.observe(element, { childList: true, characterData: true, subtree: true });
    return element;
  };
}

// The serial console: one terminal for the tab's life (its history survives a reconnection),
// attached to each socket in turn.
async function serialConsole(element) {
  const [{ Terminal }, { FitAddon }] = await Promise.all([
    import("../vendor/xterm.js"), import("../vendor/xterm-fit.js")]);
  const doc = element.ownerDocument;
  loadCss(doc);
  const term = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000,
                              fontFamily: "ui-monospace, monospace", fontSize: 14 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  adoptStyles(doc);
  term.open(element);
  const resized = new ResizeObserver(() => { try { fit.fit(); } catch { /* hidden */ } });
  resized.observe(element);
  let socket = null;
  const encoder = new TextEncoder();
  const typed = term.onData((data) => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  const typedBinary = term.onBinary((data) => {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
    }
  });
  return {
    term,
    attach(url, hooks) {
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      socket = ws;
      ws.onopen = () => { hooks.opened(); term.focus(); };
      ws.onmessage = (event) => term.write(new Uint8Array(event.data));
      ws.onclose = (event) => { if (socket === ws) socket = null; hooks.closed(event.reason); };
      return () => { ws.onclose = null; ws.close(1000); if (socket === ws) socket = null; };
    },
    // A serial console's paste is the text itself; a line ends with Enter (CR).
    paste(text) { if (socket) socket.send(encoder.encode(text.replace(/\r?\n/g, "\r"))); },
    ctrlAltDel: null,
    focus: () => term.focus(),
    dispose() { resized.disconnect(); typed.dispose(); typedBinary.dispose(); term.dispose(); },
  };
}

// The screen: a new noVNC RFB for each socket (it owns its WebSocket).
async function screenConsole(element) {
  const [{ default: RFB }, { default: keysyms }] = await Promise.all([
    import("../vendor/novnc/core/rfb.js"), import("../vendor/novnc/core/input/keysymdef.js")]);
  let rfb = null;
  const key = (keysym) => { rfb.sendKey(keysym, null, true); rfb.sendKey(keysym, null, false); };
  return {
    get rfb() { return rfb; },
    attach(url, hooks) {
      const mine = new RFB(element, url, { wsProtocols: ["binary"], shared: true });
      rfb = mine;
      mine.scaleViewport = true;
      mine.focusOnClick = true;
      mine.addEventListener("connect", () => { hooks.opened(); mine.focus(); });
      mine.addEventListener("securityfailure", (event) => hooks.closed(
        `the screen refused the connection: ${event.detail.reason || event.detail.status}`));
      mine.addEventListener("disconnect", () => { if (rfb === mine) rfb = null; hooks.closed(""); });
      return () => { if (rfb === mine) rfb = null; mine.disconnect(); };
    },
    // Each character as its key; Shift around those a US keyboard types with it.
    paste(text) {
      if (!rfb) return;
      for (const char of text.replace(/\r\n/g, "\n")) {
        if (KEYSYM[char]) { key(KEYSYM[char]); continue; }
        const keysym = keysyms.lookup(char.codePointAt(0));
        const shift = SHIFTED.test(char);
        if (shift) rfb.sendKey(KEYSYM.shift, "ShiftLeft", true);
        key(keysym);
        if (shift) rfb.sendKey(KEYSYM.shift, "ShiftLeft", false);
      }
    },
    ctrlAltDel: () => { if (rfb) rfb.sendCtrlAltDel(); },
    focus: () => { if (rfb) rfb.focus(); },
    dispose() { if (rfb) rfb.disconnect(); rfb = null; },
  };
}

const MAKERS = { serial: serialConsole, screen: screenConsole };

// The server reads the VM again (its allowed actions follow its state) when a console ended.
function refresh(vm) {
  const key = vmKey(vm.host, vm.name);
  const known = vms.get(key);
  if (known) { vms.set(key, { ...known, stale: true }); changed(); }
}

// One console kept connected while the VM allows it (its `actions` hold console.ticket): a
// ticket, then the socket. When the socket ends, the screen asks again with backoff; the serial
// console waits to be asked (a second serial session takes the console from the first: two
// pages reconnecting would take it from each other for ever). A refused ticket (the VM is not
// running) has the VM read again: its state, kept by the event stream, reconnects either
// console when the VM runs again (a libvirt VM's reboot keeps both open).
function useConsole(vm, sub, element) {
  const [status, setStatus] = useState({ state: "connecting", text: "connecting…" });
  const [again, setAgain] = useState(0);
  const [console_, setConsole] = useState(null);
  const failures = useRef(0);
  // Not waiting on `stale`: re-reading the VM must not cut a console off and open it again.
  const allowed = (vm.actions || []).includes("console.ticket");
  const path = `/vms/${enc(vm.host, vm.name)}`;

  useEffect(() => {  // the terminal or the screen, for as long as the sub-view is shown
    let over = false, made = null;
    MAKERS[sub](element.current).then((console) => {
      if (over) console.dispose(); else { made = console; setConsole(console); }
    }).catch((exc) => setStatus({ state: "failed", text: `the console did not load: ${exc.message}` }));
    return () => { over = true; if (made) made.dispose(); setConsole(null); };
  }, [sub]);

  useEffect(() => {
    if (!console_) return undefined;
    if (!allowed) {
      failures.current = 0;  // when it runs again, a fresh start
      setStatus({ state: "off", text: !can("operator") ? "A console needs the operator role."
        : `The VM is ${vm.power_state}: its console opens when it runs.` });
      return undefined;
    }
    let over = false, detach = null, timer = null;
    const retry = (why) => {
      const wait = BACKOFF_MS[failures.current];
      failures.current += 1;
      if (wait === undefined) {
        setStatus({ state: "ended", text: `${why}; reconnect to try again` });
        return;
      }
      setStatus({ state: "reconnecting", text: `${why}; reconnecting in ${(wait / 1000).toFixed(1)} s` });
      timer = setTimeout(() => setAgain((n) => n + 1), wait);
    };
    setStatus({ state: "connecting", text: "connecting…" });
    api(`${path}/console/tickets`, { method: "POST", body: { kind: SOCKET[sub] } }).then((issued) => {
      if (over) return;
      const scheme = window.location.protocol === "https:" ? "wss" : "ws";
      // Made here from the names, each escaped (a XenServer VM's name may hold a "/").
      const url = `${scheme}://${window.location.host}/api/v1${path}/console/${SOCKET[sub]}`
        + `?ticket=${encodeURIComponent(issued.ticket)}`;
      let connected = false;
      detach = console_.attach(url, {
        opened: () => { connected = true; failures.current = 0; setStatus({ state: "connected", text: "connected" }); },
        closed: (reason) => {
          if (over) return;
          detach = null;
          const why = reason || (connected ? "the console ended" : "the console did not connect");
          if (sub === "serial" && connected) setStatus({ state: "ended", text: why });
          else retry(why);
        },
      });
    }).catch((exc) => {
      if (over) return;
      if (exc.status === 409 || exc.status === 403 || exc.status === 404) {
        refresh(vm);  // not running (any more), or not allowed: the VM's state says when
        setStatus({ state: "ended", text: exc.message });
      } else retry(exc.message);
    });
    return () => { over = true; clearTimeout(timer); if (detach) detach(); };
  }, [console_, allowed, path, again]);

  const reconnect = () => { failures.current = 0; setAgain((n) => n + 1); };
  return { status, console: console_, allowed, reconnect };
}

export function ConsolePane({ vm, sub, pick, popout = false }) {
  const shown = SUBVIEWS.some(([name]) => name === sub) ? sub : "serial";
  return html`<div class="console" data-console=${shown}>
    <div class="tabs sub" role="tablist" aria-label="Console">
      ${SUBVIEWS.map(([name, label]) => html`<button key=${name} role="tab" data-console-view=${name}
        aria-selected=${String(name === shown)} onClick=${() => pick(name)}>${label}</button>`)}
    </div>
    ${shown === "log" ? html`<${ConsoleLog} vm=${vm} />`
      : html`<${LiveConsole} key=${`${vmKey(vm.host, vm.name)} ${shown}`} vm=${vm} sub=${shown}
          popout=${popout} />`}
  </div>`;
}

function ConsoleLog({ vm }) {
  const [again, setAgain] = useState(0);
  const read = useRead("console", `/vms/${enc(vm.host, vm.name)}/console?lines=200`, again);
  return html`<button onClick=${() => setAgain(again + 1)}>Refresh</button>
    <pre id="console">${read.error || (read.data === null ? "…" : read.data || "(empty)")}</pre>`;
}

function LiveConsole({ vm, sub, popout }) {
  const element = useRef(null);
  const frame = useRef(null);
  const [text, setText] = useState("");
  const { status, console: live, allowed, reconnect } = useConsole(vm, sub, element);
  const up = allowed && status.state === "connected" && !!live;
  const why = !can("operator") ? "needs the operator role" : "the console is not connected";
  const popOut = () => {
    const query = new URLSearchParams({ view: "console", sel: vmKey(vm.host, vm.name), tab: sub });
    window.open(`${window.location.pathname}?${query}`, `console-${vm.host}-${vm.name}`,
                "popup,width=1040,height=820");
  };
  const paste = (event) => {
    event.preventDefault();
    live.paste(text);
    setText("");
    live.focus();
  };
  return html`<div class="console-bar" role="toolbar" aria-label="Console">
      <span id="console-status" class=${`badge ${status.state}`} data-state=${status.state}>${status.text}</span>
      ${sub === "screen" && html`<button id="console-cad" disabled=${!up} title=${up ? undefined : why}
        onClick=${() => live.ctrlAltDel()}>Ctrl-Alt-Del</button>`}
      <button id="console-fullscreen" disabled=${!up} title=${up ? undefined : why}
        onClick=${() => frame.current.requestFullscreen().catch(() => {})}>Full screen</button>
      ${!popout && html`<button id="console-popout" disabled=${!allowed} title=${allowed ? undefined : why}
        onClick=${popOut}>Pop out</button>`}
      <button id="console-reconnect" disabled=${!allowed || status.state === "connected" || status.state === "connecting"}
        onClick=${reconnect}>Reconnect</button>
    </div>
    <form class="console-paste" onSubmit=${paste}>
      <textarea id="console-paste" rows="1" placeholder="Text to type into the console"
        aria-label="Text to paste as keystrokes" disabled=${!up} value=${text}
        onInput=${(event) => setText(event.target.value)}></textarea>
      <button id="console-paste-send" type="submit" disabled=${!up || !text}
        title=${up ? "typed as keystrokes" : why}>Paste as keystrokes</button>
    </form>
    <div class=${`console-frame ${sub}`} ref=${frame}>
      <div id=${`console-${sub}`} class="console-surface" ref=${element}></div>
    </div>`;
}

// The pop-out window (?view=console&sel=vm:HOST/NAME&tab=serial|screen|log): the console alone.
export function ConsoleView() {
  version.value;  // eslint-disable-line no-unused-expressions -- re-render on store changes
  const { sel, tab } = route.value;
  const parsed = sel ? parseKey(sel) : null;
  const isVm = !!parsed && parsed.kind === "vm";
  const vm = isVm ? vms.get(vmKey(parsed.host, parsed.vm)) : null;
  const [error, setError] = useState("");
  useEffect(() => {
    if (isVm) loadDetail(parsed).catch((exc) => setError(exc.message));
  }, [sel]);
  useEffect(() => {
    if (isVm && vm && vm.stale) loadDetail(parsed).catch(() => {});
  }, [sel, vm && vm.stale]);
  useEffect(() => { if (vm) document.title = `${vm.name}: console`; }, [vm && vm.name]);
  if (!vm) {
    return html`<main id="console-view" class="view page"><p class=${error ? "error" : "muted"}>
      ${error || (isVm ? "…" : "No VM is selected: the console opens from a VM's Console tab.")}</p></main>`;
  }
  return html`<main id="console-view" class="view page">
    <h1>VM ${vm.name} <span class="muted">on ${vm.host}</span></h1>
    <${ConsolePane} vm=${vm} sub=${tab} pick=${(name) => go({ tab: name }, false)} popout=${true} />
  </main>`;
}
