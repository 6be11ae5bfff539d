// Requests to the API. Errors come back as ApiError: the status, the message, and for a 422
// the server's complaints by field (`fields`), so a form shows each beside its input.
// `latest(key)` gives each kind of request (the details of the selection, a host's VM list)
// one signal: asking again aborts the previous request, and a reply that is not the latest
// asked for under its key is dropped, never shown over a newer one.
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, message, fields = {}) {
    super(message);
    this.status = status;
    this.fields = fields;
  }
}

let onLoggedOut = () => {};
export const whenLoggedOut = (callback) => { onLoggedOut = callback; };

// FastAPI's 422: a list of {loc, msg}; the last name in `loc` is the field.
function explain(status, body) {
  const detail = body && typeof body === "object" ? body.detail : body;
  if (!Array.isArray(detail)) return new ApiError(status, String(detail || `HTTP ${status}`));
  const fields = {};
  const general = [];
  for (const issue of detail) {
    const name = [...(issue.loc || [])].reverse().find((part) => typeof part === "string"
                                                         && part !== "body");
    if (name) fields[name] = fields[name] ? `${fields[name]}; ${issue.msg}` : issue.msg;
    else general.push(issue.msg);
  }
  const summary = general.concat(Object.entries(fields).map(([k, v]) => `${k}: ${v}`));
  return new ApiError(status, summary.join("; "), fields);
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { "X-Glasspane": "1" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method, headers, signal, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && path !== "/auth/login") {
    onLoggedOut();
    throw new ApiError(401, "logged out");
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw explain(response.status, data);
  return data;
}

export const aborted = (exc) => exc && exc.name === "AbortError";

const inFlight = new Map();
let sequence = 0;

// The reply to `path` unless a newer request under `key` was made meanwhile: then null.
export async function latest(key, path) {
  const before = inFlight.get(key);
  if (before) before.controller.abort();
  const mine = { controller: new AbortController(), id: ++sequence };
  inFlight.set(key, mine);
  try {
    const reply = await api(path, { signal: mine.controller.signal });
    return inFlight.get(key) === mine ? reply : null;
  } catch (exc) {
    if (aborted(exc) || inFlight.get(key) !== mine) return null;
    throw exc;
  } finally {
    if (inFlight.get(key) === mine) inFlight.delete(key);
  }
}

export const enc = (...parts) => parts.map(encodeURIComponent).join("/");
