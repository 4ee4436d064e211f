// Shared by every StreamHub page: the JSON API (with the session cookie), the live event channel with
// reconnects, a DOM builder that only ever sets text (never markup), and small UI helpers.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the JSON API. Writes carry the page header the server asks of cookie sessions. */
export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") init.headers["X-StreamHub-Page"] = "1";
  if (body instanceof Blob) {
    // A file upload: the raw bytes, typed as the file is.
    init.headers["Content-Type"] = body.type || "application/octet-stream";
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204 || response.status === 202) return { status: response.status, headers: response.headers, body: null };
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "http_" + response.status, error.message || response.statusText || "request failed");
  }
  return { status: response.status, headers: response.headers, body: data };
}

export const get = async (path) => (await api("GET", path)).body;

/** Who this page's session is: `{signed_in, kind, role, name, scope}` (or `{signed_in:false, setup}`). */
export async function session() {
  return (await api("GET", "/session")).body;
}

const roles = ["viewer", "editor", "admin"];
/** Whether a session's role is at least `role` (wall links have none of these roles but "viewer" for invites). */
export function atLeast(who, role) {
  return roles.indexOf(who.role) >= roles.indexOf(role);
}

/** Sends the visitor to the front door to sign in, then back here. */
export function signIn() {
  location.href = "/?next=" + encodeURIComponent(location.pathname + location.search);
}

export async function signOut() {
  try { await api("POST", "/api/v1/users/logout"); } catch { /* a link session has no login token to revoke */ }
  await api("DELETE", "/session");
  location.href = "/";
}

/**
 * A live channel (`/events` unless `path` names another, authenticated by the session cookie), reconnecting
 * with exponential backoff and full jitter. `onEvent(event)` gets every JSON frame, `onBinary(ArrayBuffer)`
 * every binary one; `onState("open"|"connecting"|"closed", code)` the connection's state. A 4401/4403/4404
 * close is final (the session is gone, not allowed, or the thing watched is gone); `onRefused` is told.
 */
export function liveEvents({ types, path = "/events", onEvent, onBinary = () => {}, onState = () => {}, onOpen = () => {}, onRefused = () => {} }) {
  let attempt = 0;
  let socket = null;
  let stopped = false;
  function connect() {
    onState("connecting");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + path + (types ? "?types=" + encodeURIComponent(types.join(",")) : ""));
    socket.binaryType = "arraybuffer";
    socket.onopen = () => { attempt = 0; onState("open"); onOpen(); };
    socket.onmessage = (message) => {
      if (message.data instanceof ArrayBuffer) { onBinary(message.data); return; }
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      onEvent(event);
    };
    socket.onclose = (event) => {
      if (stopped) return;
      if (event.code === 4401 || event.code === 4403 || event.code === 4404) {
        onState("closed", event.code);
        onRefused(event.code, event.reason);
        return;
      }
      onState("connecting", event.code);
      const delay = Math.random() * Math.min(15000, 500 * 2 ** attempt);
      attempt = Math.min(attempt + 1, 10);
      setTimeout(connect, delay);
    };
  }
  connect();
  return { close() { stopped = true; if (socket) socket.close(1000); } };
}

/**
 * Builds an element. `attrs` keys: `class`, `text` (set as text), `on<event>` (listeners), `dataset`,
 * `style` (an object of properties), anything else as an attribute. Children: nodes or strings (as text).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

let toastTimer = null;
/** A short message in the corner; errors stay longer. */
export function toast(message, kind = "info") {
  let box = document.querySelector(".toast");
  if (!box) { box = el("div", { class: "toast", role: "status", "aria-live": "polite" }); document.body.append(box); }
  box.textContent = message;
  box.dataset.kind = kind;
  box.classList.remove("hidden");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.add("hidden"), kind === "error" ? 8000 : 3000);
}

/** Runs an API action and shows its error, if any, as a toast. */
export async function attempt(action, success) {
  try {
    const result = await action();
    if (success) toast(success);
    return result;
  } catch (error) {
    toast(error.message || String(error), "error");
    return undefined;
  }
}

/** The status badge of a stream. */
export function statusBadge(status) {
  return el("span", { class: "badge", dataset: { status: status || "unknown" }, text: status || "unknown" });
}

/** "source · city, state" of a stream, whichever parts it has. */
export function streamWhere(stream) {
  return [stream.city, stream.state].filter(Boolean).join(", ");
}

export function streamName(stream) {
  return stream.source || stream.title || stream.link;
}

/** Seconds as m:ss (or h:mm:ss). */
export function clock(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
}

/** A random id for this page's presence. */
export function randomID() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Says every 10 s that this page is open on the wall, and that it left when it closes. */
export function announcePresence(wall, page) {
  return announcePresenceAt(`/api/v1/walls/${encodeURIComponent(wall)}/presence`, page);
}

/** Says every 10 s on a presence endpoint (a wall's, a program's) that this page is open, and when it leaves. */
export function announcePresenceAt(path, page) {
  const id = randomID();
  const say = (state) => api("POST", path, { session: id, page, state }).catch(() => {});
  say("here");
  const timer = setInterval(() => say("here"), 10000);
  addEventListener("pagehide", () => {
    clearInterval(timer);
    fetch(path, {
      method: "POST", keepalive: true, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-StreamHub-Page": "1" },
      body: JSON.stringify({ session: id, page, state: "gone" }),
    }).catch(() => {});
  });
  return id;
}

/** The top bar of the front, control and admin pages. */
export function topbar(who, current, extra = []) {
  const links = [["/", "Home"]];
  if (!who.scope) links.push(["/admin", "Admin"]);
  const nav = el("nav", { "aria-label": "Pages" }, links.map(([href, label]) =>
    el("a", { href, "aria-current": current === href ? "page" : null, text: label })));
  const conn = el("span", { class: "conn", id: "conn", title: "live updates", "aria-label": "live updates" });
  const name = who.scope ? `${who.scope.access} link · ${who.scope.wall}` : `${who.name} · ${who.role}`;
  return el("header", { class: "topbar" },
    el("a", { class: "brand", href: "/", text: "StreamHub" }), nav, ...extra,
    el("div", { class: "who" }, conn, el("span", { text: name }),
      el("button", { type: "button", onclick: () => signOut(), text: "Sign out" })));
}

export function setConnection(state) {
  const dot = document.getElementById("conn");
  if (dot) { dot.dataset.state = state; dot.title = "live updates: " + state; }
}
