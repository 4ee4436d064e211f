// The control page: the registry's streams on the left (live), the wall's grid on the right. Drag a stream
// onto a cell (or tap it, then tap the cell), type an id or link into a cell, set fallbacks, swap cells,
// listen, blur, rotate, rewind. Every change is one operation on one cell; the server keeps the wall and
// tells every page and display at once.
import { api, get, session, el, clear, liveEvents, toast, attempt, atLeast, topbar, setConnection, announcePresence, statusBadge,
  streamName, streamWhere, clock, signIn } from "/assets/api.js";
import { WallState, wallName, wallPath, tilesOf, cellBody, putCell, setAudio, shortcuts, wallKeys, contentKey } from "/assets/wallstate.js";

const app = document.getElementById("app");
const state = new WallState();
let who = null;
let canOperate = false;
let canManage = false;
let picked = null;           // a stream id picked by tapping, to place by tapping a cell
let swapFrom = null;         // a cell waiting for its swap partner
const list = { streams: new Map(), filters: { q: "", status: "", platform: "", city: "" } };
const presence = new Map();  // session → {name, role, page, until}

// ---------- streams ----------

async function loadStreams() {
  const params = new URLSearchParams({ per_page: "100", sort: "-is_pinned,-last_live_at,-updated_at" });
  const { q, status, platform, city } = list.filters;
  if (q) params.set("search", q);
  if (status) params.set("status", status);
  if (platform) params.set("platform", platform);
  if (city) params.set("city", city);
  const answer = await get("/api/v1/streams?" + params);
  list.streams = new Map(answer.streams.map((s) => [s.id, s]));
  list.total = answer.meta.total_count;
  drawStreams();
}

function matches(stream) {
  const { q, status, platform, city } = list.filters;
  if (stream.is_archived) return false;
  if (status && stream.status !== status) return false;
  if (platform && stream.platform !== platform) return false;
  if (city && (stream.city || "").toLowerCase() !== city.toLowerCase()) return false;
  if (q) {
    const text = [stream.source, stream.title, stream.city, stream.link, stream.notes].join(" ").toLowerCase();
    if (!text.includes(q.toLowerCase())) return false;
  }
  return true;
}

function drawStreams() {
  const box = document.getElementById("stream-list");
  if (!box) return;
  const sorted = [...list.streams.values()].filter(matches).sort((a, b) =>
    (b.is_pinned - a.is_pinned) || ((b.status === "live") - (a.status === "live")) || (b.id - a.id));
  clear(box).append(...sorted.map((stream) => el("li", {
    class: "stream-item", draggable: canOperate ? "true" : null, tabindex: "0", role: "button",
    "aria-pressed": picked === stream.id ? "true" : "false", dataset: { streamId: String(stream.id) },
    ondragstart: (event) => { event.dataTransfer.setData("text/x-stream-id", String(stream.id)); event.dataTransfer.effectAllowed = "copy"; },
    onclick: () => pick(stream.id),
    onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pick(stream.id); } },
  },
  el("span", { class: "title", text: streamName(stream) }),
  el("span", { class: "row" }, stream.is_pinned ? el("span", { class: "badge pin", text: "pinned" }) : null, statusBadge(stream.status)),
  el("span", { class: "meta", text: [`#${stream.id}`, stream.platform, stream.title, streamWhere(stream)].filter(Boolean).join(" · ") }))));
  if (!sorted.length) box.append(el("li", { class: "muted", text: "No streams match." }));
  const count = document.getElementById("stream-count");
  if (count) count.textContent = `${sorted.length} shown${list.total > list.streams.size ? ` of ${list.total}` : ""}`;
}

function pick(id) {
  if (!canOperate) return;
  picked = picked === id ? null : id;
  drawStreams();
  drawGrid();
  if (picked) toast(`Stream #${id} picked: tap a cell to place it`);
}

// ---------- grid ----------

function describe(cell) {
  if (cell.stream_id) {
    const stream = state.streams.get(cell.stream_id) || list.streams.get(cell.stream_id);
    return { title: stream ? streamName(stream) : `Stream #${cell.stream_id}`, sub: stream ? [stream.status, streamWhere(stream)].filter(Boolean).join(" · ") : "", stream };
  }
  if (cell.recording_id) {
    const recording = state.recordings.get(cell.recording_id);
    return { title: "Recording " + cell.recording_id.slice(0, 8), sub: recording ? recording.state : "" };
  }
  if (cell.url) return { title: cell.url, sub: "link" };
  return null;
}

function rewindable(cell) {
  if (cell.recording_id) return state.recordings.get(cell.recording_id) || { id: cell.recording_id };
  if (cell.stream_id) return state.recordingOf(cell.stream_id);
  return null;
}

function drawGrid() {
  const grid = document.getElementById("grid");
  const wall = state.wall;
  if (!grid || !wall) return;
  grid.style.gridTemplateColumns = `repeat(${wall.columns}, minmax(0, 1fr))`;
  const audioCell = wall.audio ? wall.audio.cell : null;
  const merged = new Map();
  for (const tile of tilesOf(wall)) for (let n = 1; n <= wall.columns * wall.rows; n++) if (tile.covers(n) && n !== tile.cell) merged.set(n, tile.cell);
  const focused = document.activeElement && document.activeElement.classList.contains("assign") ? document.activeElement : null;
  clear(grid).append(...wall.cells.map((cell) => {
    const what = describe(cell);
    const n = cell.cell;
    const node = el("div", { class: "cell", dataset: { cell: String(n), filled: what ? "true" : "false", audible: audioCell === n ? "true" : "false" },
      tabindex: "0", role: "gridcell", "aria-label": `Cell ${n}` });
    node.append(el("div", { class: "row" }, el("span", { class: "n", text: String(n) }),
      merged.has(n) ? el("span", { class: "muted", text: `plays with ${merged.get(n)}` }) : null,
      cell.blurred ? el("span", { class: "badge", text: "blurred" }) : null,
      cell.rotation ? el("span", { class: "badge", text: `${cell.rotation}°` }) : null,
      cell.rewind_seconds ? el("span", { class: "badge", dataset: { status: "unknown" }, text: "−" + clock(cell.rewind_seconds) }) : null,
      audioCell === n ? el("span", { class: "badge", dataset: { status: "live" }, text: "heard" }) : null));
    if (what) {
      node.append(el("div", { class: "what", title: what.title, text: what.title }), el("div", { class: "sub", text: what.sub }));
      if (cell.fallback_stream_id) {
        const fallback = state.streams.get(cell.fallback_stream_id) || list.streams.get(cell.fallback_stream_id);
        node.append(el("div", { class: "sub", text: "fallback: " + (fallback ? streamName(fallback) : "#" + cell.fallback_stream_id) }));
      }
    } else {
      node.append(el("div", { class: "sub", text: canOperate ? "Drop a stream here, or type an id or link" : "Empty" }));
    }
    if (canOperate) {
      node.append(assignInput(n), cellActions(cell, what));
      node.addEventListener("dragover", (event) => { event.preventDefault(); node.classList.add("drop"); });
      node.addEventListener("dragleave", () => node.classList.remove("drop"));
      node.addEventListener("drop", (event) => {
        event.preventDefault();
        node.classList.remove("drop");
        const streamID = Number(event.dataTransfer.getData("text/x-stream-id"));
        const fromCell = Number(event.dataTransfer.getData("text/x-cell"));
        if (streamID) assign(n, { stream_id: streamID });
        else if (fromCell && fromCell !== n) swap(fromCell, n);
      });
      if (what) {
        node.draggable = true;
        node.addEventListener("dragstart", (event) => { event.dataTransfer.setData("text/x-cell", String(n)); });
      }
      node.addEventListener("click", (event) => {
        if (event.target.closest("button, input, a, select")) return;
        if (picked) { assign(n, { stream_id: picked }); picked = null; drawStreams(); }
        else if (swapFrom && swapFrom !== n) { swap(swapFrom, n); swapFrom = null; }
      });
    }
    return node;
  }));
  if (focused && focused.isConnected) focused.focus();
  document.getElementById("volume").value = String(wall.audio ? wall.audio.volume : 1);
}

/** Each cell's "id or link" field lives across redraws, so what an operator is typing survives every live update. */
const assignInputs = new Map();
function assignInput(n) {
  let input = assignInputs.get(n);
  if (!input) {
    input = el("input", { class: "assign", placeholder: "id or link, Enter", "aria-label": `Stream id or link for cell ${n}`,
      onkeydown: (event) => {
        if (event.key !== "Enter") return;
        event.preventDefault();
        const text = input.value.trim();
        input.value = "";
        assignTyped(n, text);
      } });
    assignInputs.set(n, input);
  }
  return input;
}

function button(text, onclick, extra = {}) {
  return el("button", { type: "button", text, onclick, ...extra });
}

function cellActions(cell, what) {
  const n = cell.cell;
  const wall = state.wall;
  const actions = el("div", { class: "actions" });
  if (!what) {
    if (picked) actions.append(button("Place picked", () => { assign(n, { stream_id: picked }); picked = null; drawStreams(); }));
    return actions;
  }
  const heard = wall.audio && wall.audio.cell === n;
  actions.append(
    button(heard ? "Mute" : "Listen", () => change(setAudio(heard ? null : n)), { "aria-pressed": heard ? "true" : "false" }),
    button(cell.blurred ? "Unblur" : "Blur", () => change(putCell(n, cellBody(cell, { blurred: !cell.blurred })))),
    button("Rotate", () => change(putCell(n, cellBody(cell, { rotation: ((cell.rotation || 0) + 90) % 360 })))),
    button(swapFrom === n ? "Swap…" : "Swap", () => { swapFrom = swapFrom === n ? null : n; drawGrid(); if (swapFrom) toast(`Tap the cell to swap with ${n}`); }),
    button(picked ? "Fallback ← picked" : cell.fallback_stream_id ? "No fallback" : "Fallback…", () => {
      if (picked) { change(putCell(n, cellBody(cell, { fallback_stream_id: picked }))); picked = null; drawStreams(); }
      else if (cell.fallback_stream_id) { const body = cellBody(cell); delete body.fallback_stream_id; change(putCell(n, body)); }
      else toast("Pick a stream in the list first, then press Fallback");
    }),
  );
  const recording = rewindable(cell);
  if (recording) {
    const minutes = el("select", { "aria-label": `Rewind cell ${n}`, onchange: () => rewind(cell, Number(minutes.value)) },
      [0, 1, 2, 5, 10, 30, 60].map((m) => el("option", { value: String(m * 60), text: m ? `−${m} min` : "Live", selected: (cell.rewind_seconds || 0) === m * 60 })));
    actions.append(minutes);
    if (cell.rewind_seconds) actions.append(button("Back to live", () => rewind(cell, 0)));
    actions.append(scrubber(cell, recording));
  } else if (cell.stream_id && canManage) {
    actions.append(button("Record", () => startRecording(cell.stream_id)));
  }
  if (what.stream) actions.append(el("a", { class: "button", href: what.stream.link, target: "_blank", rel: "noopener noreferrer", text: "Open at source" }));
  actions.append(button("Clear", () => change(api("DELETE", `${wallPath}/cells/${n}`)), { class: "danger" }));
  return actions;
}

/** A range over what is recorded: picking a moment rewinds the cell to it. */
function scrubber(cell, recording) {
  const now = Date.now() / 1000;
  const from = Math.max(Date.parse(recording.started_at || recording.created_at || 0) / 1000 || now - 3600, now - (recording.retention || 3600));
  const span = Math.max(60, Math.floor(now - from));
  const input = el("input", { type: "range", min: "0", max: String(span), step: "10", value: String(span - (cell.rewind_seconds || 0)),
    "aria-label": `Moment to play in cell ${cell.cell}`, title: "Drag to a moment of the recording" });
  input.addEventListener("change", () => rewind(cell, Math.max(0, span - Number(input.value))));
  return input;
}

function rewind(cell, seconds) {
  const body = cellBody(cell);
  if (seconds > 0) body.rewind_seconds = seconds; else delete body.rewind_seconds;
  if (!seconds) body.rewind_seconds = 0;
  return change(putCell(cell.cell, body));
}

async function startRecording(streamID) {
  const created = await attempt(() => api("POST", "/api/v1/recordings", { stream_id: streamID }), "Recording started");
  if (created) { state.recordings.set(created.body.id, created.body); drawGrid(); }
}

async function assign(n, content) {
  const current = state.wall.cells[n - 1];
  const body = { ...content, blurred: !!current.blurred, rotation: current.rotation || 0 };
  if (current.fallback_stream_id) body.fallback_stream_id = current.fallback_stream_id;
  await change(putCell(n, body));
}

/** A typed id or link: a stream id, a registry stream's link (as posted or normalised), or an HLS/page URL. */
async function assignTyped(n, text) {
  if (!text) return;
  if (/^#?\d+$/.test(text)) return assign(n, { stream_id: Number(text.replace("#", "")) });
  try {
    const found = await get("/api/v1/streams?per_page=1&is_archived=any&link=" + encodeURIComponent(text));
    if (found.streams.length) return assign(n, { stream_id: found.streams[0].id });
  } catch { /* not a link the registry knows */ }
  if (/^[0-9a-f]{32}$/.test(text)) return assign(n, { recording_id: text });
  return assign(n, { url: text });
}

/** Swaps two cells: two operations, each on one cell. */
async function swap(a, b) {
  const first = state.wall.cells[a - 1], second = state.wall.cells[b - 1];
  const bodyFor = (cell) => (contentKey(cell) ? cellBody(cell) : null);
  const [toA, toB] = [bodyFor(second), bodyFor(first)];
  await change(toA ? putCell(a, toA) : api("DELETE", `${wallPath}/cells/${a}`));
  await change(toB ? putCell(b, toB) : api("DELETE", `${wallPath}/cells/${b}`));
}

async function change(promise) {
  try {
    const answer = await promise;
    if (answer && answer.body && answer.body.version) {
      if (await state.apply({ event: "wall_changed", wall: wallName, version: answer.body.version, state: answer.body })) drawGrid();
    }
  } catch (error) {
    toast(error.message, "error");
  }
}

// ---------- presence ----------

function drawPresence() {
  const box = document.getElementById("presence");
  if (!box) return;
  const now = Date.now();
  for (const [id, entry] of presence) if (entry.until < now) presence.delete(id);
  const entries = [...presence.values()].sort((a, b) => a.page.localeCompare(b.page) || a.name.localeCompare(b.name));
  clear(box).append(...entries.map((entry) => el("span", { class: "who", dataset: { page: entry.page }, title: entry.role,
    text: entry.page === "display" ? `display · ${entry.name}` : entry.name })));
}

// ---------- links (editors) ----------

async function drawLinks() {
  const box = document.getElementById("links");
  if (!box || !canManage) return;
  const answer = await get(`${wallPath}/links`);
  clear(box).append(el("table", {}, el("thead", {}, el("tr", {}, ["Kind", "Label", "Uses", "Expires", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, answer.links.map((link) => el("tr", { dataset: { link: String(link.id) } },
      el("td", { text: link.kind === "display" ? "display" : `${link.access} invite` }),
      el("td", { text: link.label || "" }),
      el("td", { text: link.max_uses ? `${link.uses}/${link.max_uses}` : String(link.uses) }),
      el("td", { text: link.revoked_at ? "revoked" : link.expires_at ? new Date(link.expires_at).toLocaleString() : "never" }),
      el("td", {}, link.revoked_at ? null : button("Revoke", async () => {
        await attempt(() => api("DELETE", `${wallPath}/links/${link.id}`), "Link revoked");
        drawLinks();
      }, { class: "danger" })))))));
}

function linkDialog() {
  const dialog = el("dialog", { id: "link-dialog" });
  const kind = el("select", { name: "kind" }, el("option", { value: "operator", text: "Operator invite (can change the wall)" }),
    el("option", { value: "viewer", text: "View-only invite" }), el("option", { value: "display", text: "Display link (for a TV)" }));
  const hours = el("input", { type: "number", min: "1", max: "720", value: "24", name: "hours" });
  const uses = el("input", { type: "number", min: "1", max: "10000", placeholder: "unlimited", name: "uses" });
  const label = el("input", { name: "label", maxlength: "200", placeholder: "e.g. night desk" });
  const result = el("div", { class: "stack" });
  dialog.append(el("form", { class: "form", method: "dialog", onsubmit: async (event) => {
    event.preventDefault();
    const body = kind.value === "display" ? { label: label.value || undefined }
      : { role: kind.value, expires_in: Number(hours.value) * 3600, max_uses: uses.value ? Number(uses.value) : undefined, label: label.value || undefined };
    const created = await attempt(() => api("POST", `${wallPath}/${kind.value === "display" ? "displays" : "invites"}`, body));
    if (!created) return;
    const url = new URL(created.body.url, location.origin).href;
    clear(result).append(el("label", {}, "Send this link (shown once)", el("input", { readonly: true, value: url, id: "new-link", onfocus: (e) => e.target.select() })));
    drawLinks();
  } },
  el("h2", { text: "Share this wall" }), el("label", {}, "Kind", kind), el("label", {}, "Expires after (hours, invites)", hours),
  el("label", {}, "Uses (invites)", uses), el("label", {}, "Label", label), result,
  el("div", { class: "row" }, el("button", { class: "primary", type: "submit", text: "Create link" }),
    el("button", { type: "button", text: "Close", onclick: () => dialog.close() }))));
  return dialog;
}

// ---------- page ----------

function layout() {
  const filters = list.filters;
  const search = el("input", { type: "search", placeholder: "Search streams", "aria-label": "Search streams", value: filters.q });
  const status = el("select", { "aria-label": "Status" }, ["", "live", "offline", "unknown"].map((s) => el("option", { value: s, text: s || "Any status" })));
  const platform = el("select", { "aria-label": "Platform" }, ["", "hls", "twitch", "youtube", "tiktok", "kick", "facebook", "instagram", "x", "rumble", "other"]
    .map((p) => el("option", { value: p, text: p || "Any platform" })));
  const city = el("input", { placeholder: "City", "aria-label": "City" });
  let timer = null;
  const refilter = () => {
    Object.assign(list.filters, { q: search.value.trim(), status: status.value, platform: platform.value, city: city.value.trim() });
    drawStreams();
    clearTimeout(timer);
    timer = setTimeout(() => loadStreams().catch((e) => toast(e.message, "error")), 300);
  };
  for (const input of [search, status, platform, city]) input.addEventListener("input", refilter);

  const volume = el("input", { type: "range", id: "volume", min: "0", max: "1", step: "0.05", "aria-label": "Wall volume", disabled: !canOperate });
  volume.addEventListener("change", () => change(setAudio(state.wall.audio ? state.wall.audio.cell : null, Number(volume.value))));

  const extra = [el("a", { class: "button", href: `/wall/${encodeURIComponent(wallName)}`, target: "_blank", text: "Open display" })];
  if (canManage) extra.push(button("Share…", () => document.getElementById("link-dialog").showModal()));
  const size = canManage ? el("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    change(api("PATCH", wallPath, { columns: Number(cols.value), rows: Number(rows.value) }));
  } }) : null;
  const cols = el("select", { "aria-label": "Columns" }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => el("option", { value: String(n), text: `${n} columns`, selected: n === state.wall.columns })));
  const rows = el("select", { "aria-label": "Rows" }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => el("option", { value: String(n), text: `${n} rows`, selected: n === state.wall.rows })));
  if (size) size.append(cols, rows, el("button", { type: "submit", text: "Resize" }));

  return [
    topbar(who, "", extra),
    el("div", { class: "control" },
      el("aside", { class: "streams", "aria-label": "Streams" },
        el("h2", { text: "Streams" }),
        el("div", { class: "filters" }, search, status, platform, city),
        el("div", { class: "muted", id: "stream-count" }),
        el("ul", { id: "stream-list", class: "stack", style: { listStyle: "none", padding: "0", margin: "0" } })),
      el("section", { "aria-label": "Wall" },
        el("div", { class: "toolbar" },
          el("h1", { text: state.wall.title || state.wall.name }),
          canOperate ? null : el("span", { class: "readonly-note", text: "View only: you can watch, not change, this wall." }),
          el("label", {}, "Volume", volume), size,
          el("div", { class: "presence", id: "presence", "aria-label": "Who is here" })),
        el("div", { id: "grid", role: "grid", "aria-label": "Cells" }),
        canManage ? el("section", { class: "card", style: { marginTop: "16px" } }, el("h2", { text: "Invite and display links" }), el("div", { id: "links" })) : null,
        el("p", { class: "muted", text: "Keys: " + shortcuts.slice(0, 3).map(([k, w]) => `${k} ${w.toLowerCase()}`).join(" · ") + " · ? for all" }))),
    canManage ? linkDialog() : null,
  ].filter(Boolean);
}

async function start() {
  who = await session();
  if (!who.signed_in) return signIn();
  canOperate = who.scope ? who.scope.access === "operator" : atLeast(who, "editor");
  canManage = !who.scope && atLeast(who, "editor");
  await state.load();
  document.title = `Control · ${state.wall.title || state.wall.name} · StreamHub`;
  clear(app).append(...layout());
  app.removeAttribute("aria-busy");
  document.body.dataset.canOperate = String(canOperate);
  drawGrid();
  await loadStreams();
  drawLinks().catch(() => {});
  let opened = false;
  liveEvents({
    types: ["wall_changed", "wall_presence", "stream_created", "stream_updated", "stream_status", "stream_deleted", "recording_state"],
    onState: setConnection,
    onOpen: async () => {
      if (opened) { await state.load().catch(() => {}); drawGrid(); loadStreams().catch(() => {}); }
      opened = true;
      document.body.dataset.live = "true";
    },
    onRefused: () => toast("This page's session ended. Sign in again.", "error"),
    onEvent: async (event) => {
      if (event.event === "wall_presence") {
        if (event.wall !== wallName) return;
        if (event.state === "gone") presence.delete(event.session);
        else presence.set(event.session, { name: event.name, role: event.role, page: event.page, until: Date.now() + (event.ttl || 30) * 1000 });
        drawPresence();
        return;
      }
      if (event.stream && event.event.startsWith("stream_")) {
        if (event.event === "stream_deleted") list.streams.delete(event.stream.id);
        else list.streams.set(event.stream.id, event.stream);
        drawStreams();
      }
      if (await state.apply(event)) drawGrid();
      else if (event.event === "recording_state" && event.recording && !state.recordings.has(event.recording.id) && event.recording.stream_id
        && state.wall.cells.some((c) => c.stream_id === event.recording.stream_id)) {
        state.recordings.set(event.recording.id, event.recording);
        drawGrid();
      }
    },
  });
  announcePresence(wallName, "control");
  setInterval(drawPresence, 5000);
  wallKeys(async (kind, n) => {
    if (kind === "help") return toast(shortcuts.map(([k, w]) => `${k}: ${w}`).join(" · "));
    if (!canOperate || !n && kind !== "silence") return;
    const tile = n ? tilesOf(state.wall).find((t) => t.covers(n)) : null;
    if (kind === "silence") return change(setAudio(null));
    if (kind === "listen") return change(setAudio(state.wall.audio && state.wall.audio.cell === n ? null : n));
    if (kind === "blur" && tile) return change(putCell(tile.cell, cellBody(tile.data, { blurred: !tile.data.blurred })));
  });
}

start().catch((error) => {
  if (error.status === 401) return signIn();
  app.textContent = "The control page could not load: " + error.message;
});
