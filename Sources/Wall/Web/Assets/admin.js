// The admin page: streams (inline edit under the registry's edit locks and If-Match), streamers, recordings,
// walls, overlays, users, API keys, feature flags, ignore lists and the audit log. Everything goes through
// the JSON API; the server decides what each role may do, the page only hides what would be refused.
import { api, get, session, el, clear, liveEvents, toast, attempt, atLeast, topbar, setConnection, statusBadge, streamName, signIn } from "/assets/api.js";

const app = document.getElementById("app");
let who = null;
const tabs = [];
let current = null;
let panel = null;
const locks = new Map();   // stream id → {locked_by, expires_at}
const handlers = new Set(); // event handlers of the open tab
const cleanups = new Set(); // what the open tab runs when another one opens

function tab(id, label, role, draw) { tabs.push({ id, label, role, draw }); }

function table(headers, rows) {
  return el("div", { class: "table-scroll" },
    el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))), el("tbody", {}, rows)));
}

function button(text, onclick, extra = {}) { return el("button", { type: "button", text, onclick, ...extra }); }

function field(label, input) { return el("label", {}, label, input); }

function form(onsubmit, ...children) {
  return el("form", { class: "toolbar", onsubmit: async (event) => { event.preventDefault(); await onsubmit(event.target); } }, ...children);
}

function input(name, attrs = {}) { return el("input", { name, ...attrs }); }

function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }

const editor = () => atLeast(who, "editor");
const admin = () => atLeast(who, "admin");

// ---------- streams ----------

const streamsView = { filters: { q: "", status: "", archived: "false" }, page: 1, editing: null, renew: null };

tab("streams", "Streams", "viewer", async (box) => {
  const q = input("q", { type: "search", placeholder: "Search source, title, city, link", value: streamsView.filters.q, "aria-label": "Search" });
  const status = el("select", { name: "status", "aria-label": "Status" }, ["", "live", "offline", "unknown"].map((s) =>
    el("option", { value: s, text: s || "Any status", selected: streamsView.filters.status === s })));
  const archived = el("select", { name: "archived", "aria-label": "Archived" }, [["false", "Active"], ["true", "Archived"], ["any", "All"]].map(([v, t]) =>
    el("option", { value: v, text: t, selected: streamsView.filters.archived === v })));
  const list = el("div", { id: "streams-table" });
  const filter = () => { streamsView.filters = { q: q.value.trim(), status: status.value, archived: archived.value }; streamsView.page = 1; drawStreams(list); };
  q.addEventListener("input", () => { clearTimeout(streamsView.timer); streamsView.timer = setTimeout(filter, 250); });
  status.addEventListener("change", filter);
  archived.addEventListener("change", filter);
  box.append(el("div", { class: "toolbar" }, q, status, archived,
    el("a", { class: "button", href: "/api/v1/streams.csv?is_archived=any", download: "streams.csv", text: "Export CSV" }),
    editor() ? importButton(list) : null));
  if (editor()) {
    box.append(form(async (f) => {
      const created = await attempt(() => api("POST", "/api/v1/streams", { link: f.link.value.trim(), source: f.source.value.trim() || null, city: f.city.value.trim() || null }), "Stream added");
      if (created) { f.reset(); drawStreams(list); }
    }, field("Link", input("link", { required: true, type: "url", placeholder: "https://…" })), field("Source", input("source")), field("City", input("city")),
    el("button", { class: "primary", type: "submit", text: "Add stream" })));
  }
  box.append(list);
  await drawStreams(list);
  handlers.add((event) => {
    if (event.event === "stream_locked" || event.event === "stream_unlocked") {
      if (event.event === "stream_locked") locks.set(event.stream_id, event); else locks.delete(event.stream_id);
      markLock(event.stream_id);
    } else if (event.event && event.event.startsWith("stream_") && event.stream) {
      const row = list.querySelector(`tr[data-stream-id="${event.stream.id}"]`);
      if (row && streamsView.editing !== event.stream.id) row.replaceWith(streamRow(event.stream, list));
      else if (!row && event.event === "stream_created") drawStreams(list);
    }
  });
});

function importButton(list) {
  const file = el("input", { type: "file", accept: ".csv,text/csv", class: "hidden", onchange: async () => {
    if (!file.files.length) return;
    const text = await file.files[0].text();
    const send = (dry) => fetch("/api/v1/streams/import?dry_run=" + dry, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "text/csv", "X-StreamHub-Page": "1", Accept: "application/json" }, body: text }).then(async (r) => {
      const body = await r.json();
      if (!r.ok) throw new Error(body.error ? body.error.message : "import failed");
      return body;
    });
    try {
      const preview = await send(true);
      const s = preview.summary;
      if (confirm(`Import: ${s.create} new, ${s.update} changed, ${s.unchanged} unchanged, ${s.error} with errors. Go ahead?`)) {
        await send(false);
        toast("Imported");
        drawStreams(list);
      }
    } catch (error) { toast(error.message, "error"); }
    file.value = "";
  } });
  return el("span", {}, file, button("Import CSV", () => file.click()));
}

async function drawStreams(list) {
  const { q, status, archived } = streamsView.filters;
  const params = new URLSearchParams({ per_page: "50", page: String(streamsView.page), sort: "-is_pinned,-updated_at", is_archived: archived });
  if (q) params.set("search", q);
  if (status) params.set("status", status);
  const answer = await get("/api/v1/streams?" + params);
  clear(list).append(table(["#", "Status", "Source", "Title", "City", "Platform", "Updated", ""], answer.streams.map((s) => streamRow(s, list))),
    el("div", { class: "row", style: { marginTop: "10px" } },
      button("Previous", () => { streamsView.page--; drawStreams(list); }, { disabled: streamsView.page <= 1 }),
      el("span", { class: "muted", text: `Page ${answer.meta.current_page} of ${Math.max(1, answer.meta.total_pages)} · ${answer.meta.total_count} streams` }),
      button("Next", () => { streamsView.page++; drawStreams(list); }, { disabled: streamsView.page >= answer.meta.total_pages })));
}

function streamRow(stream, list) {
  const row = el("tr", { dataset: { streamId: String(stream.id) } },
    el("td", { text: String(stream.id) }),
    el("td", {}, statusBadge(stream.status), stream.is_pinned ? el("span", { class: "badge pin", text: "pinned" }) : null, stream.is_archived ? el("span", { class: "badge", text: "archived" }) : null),
    el("td", {}, el("a", { class: "cell-text", href: stream.link, target: "_blank", rel: "noopener noreferrer", text: streamName(stream) })),
    el("td", {}, el("span", { class: "cell-text", text: stream.title || "" })),
    el("td", { text: [stream.city, stream.state].filter(Boolean).join(", ") }),
    el("td", { text: stream.platform }),
    el("td", { class: "muted", text: when(stream.updated_at) }),
    el("td", { class: "row" }, editor() ? [
      button("Edit", () => editStream(stream.id, list)),
      button(stream.is_pinned ? "Unpin" : "Pin", () => attempt(() => api(stream.is_pinned ? "DELETE" : "PUT", `/api/v1/streams/${stream.id}/pin`))),
      button(stream.is_archived ? "Unarchive" : "Archive", () => attempt(() => api("POST", `/api/v1/streams/${stream.id}/${stream.is_archived ? "unarchive" : "archive"}`))),
      button("Check", () => attempt(() => api("POST", `/api/v1/streams/${stream.id}/check`), "Checked")),
    ] : null, el("span", { class: "lock muted" })));
  setTimeout(() => markLock(stream.id), 0);
  return row;
}

function markLock(id) {
  const row = document.querySelector(`tr[data-stream-id="${id}"]`);
  if (!row) return;
  const lock = locks.get(id);
  const mine = streamsView.editing === id;
  row.dataset.locked = lock && !mine ? "true" : "false";
  const note = row.querySelector(".lock");
  if (note) note.textContent = lock && !mine ? `🔒 ${lock.locked_by} is editing` : "";
}

/** Takes the stream's edit lock (renewed while the form is open), edits with If-Match, releases the lock. */
async function editStream(id, list) {
  if (streamsView.editing) return toast("Finish the stream you are editing first", "error");
  let lock;
  try {
    lock = await api("PUT", `/api/v1/streams/${id}/lock`);
  } catch (error) {
    return toast(error.status === 423 ? error.message : "Could not take the edit lock: " + error.message, "error");
  }
  streamsView.editing = id;
  const fetched = await api("GET", `/api/v1/streams/${id}`);
  const stream = fetched.body, etag = fetched.headers.get("ETag");
  streamsView.renew = setInterval(() => api("PUT", `/api/v1/streams/${id}/lock`).catch(() => {}), 20000);
  const done = async () => {
    clearInterval(streamsView.renew);
    streamsView.editing = null;
    await api("DELETE", `/api/v1/streams/${id}/lock`).catch(() => {});
    const fresh = await get(`/api/v1/streams/${id}`);
    editRow.replaceWith(streamRow(fresh, list));
  };
  const inputs = {
    source: input("source", { value: stream.source || "", "aria-label": "Source" }),
    title: input("title", { value: stream.title || "", "aria-label": "Title" }),
    city: input("city", { value: stream.city || "", "aria-label": "City" }),
    state: input("state", { value: stream.state || "", "aria-label": "State" }),
    notes: input("notes", { value: stream.notes || "", "aria-label": "Notes" }),
  };
  const editRow = el("tr", { dataset: { streamId: String(id), editing: "true" } },
    el("td", { text: String(id) }), el("td", {}, statusBadge(stream.status)),
    el("td", {}, inputs.source), el("td", {}, inputs.title), el("td", {}, inputs.city, inputs.state), el("td", {}, inputs.notes),
    el("td", { class: "muted", text: `lock until ${new Date(lock.body.expires_at).toLocaleTimeString()}` }),
    el("td", { class: "row" },
      button("Save", async () => {
        const body = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.value.trim() || null]));
        try {
          await api("PATCH", `/api/v1/streams/${id}`, body, etag ? { "If-Match": etag } : {});
          toast("Saved");
          await done();
        } catch (error) {
          toast(error.status === 412 ? "Someone changed this stream meanwhile; reload it and edit again." : error.message, "error");
          if (error.status === 412) await done();
        }
      }, { class: "primary" }),
      button("Cancel", done)));
  // The row as it is now (live updates may have redrawn it since the button was drawn).
  const row = list.querySelector(`tr[data-stream-id="${id}"]`);
  if (row) row.replaceWith(editRow); else list.querySelector("tbody")?.prepend(editRow);
  inputs.source.focus();
}

// ---------- streamers ----------

tab("streamers", "Streamers", "viewer", async (box) => {
  const answer = await get("/api/v1/streamers?per_page=100");
  if (editor()) {
    box.append(form(async (f) => {
      if (await attempt(() => api("POST", "/api/v1/streamers", { name: f.name.value.trim(), notes: f.notes.value.trim() || null }), "Streamer added")) show("streamers");
    }, field("Name", input("name", { required: true })), field("Notes", input("notes")), el("button", { class: "primary", type: "submit", text: "Add streamer" })));
  }
  box.append(table(["#", "Name", "Accounts", "Notes", ""], answer.streamers.map((s) => el("tr", {},
    el("td", { text: String(s.id) }), el("td", { text: s.name }),
    el("td", { text: (s.accounts || []).map((a) => `${a.platform}:${a.handle}`).join(", ") }), el("td", { text: s.notes || "" }),
    el("td", {}, admin() ? button("Delete", async () => { if (confirm(`Delete streamer ${s.name}? Their streams stay.`) && await attempt(() => api("DELETE", `/api/v1/streamers/${s.id}`), "Deleted")) show("streamers"); }, { class: "danger" }) : null)))));
});

// ---------- recordings ----------

tab("recordings", "Recordings", "viewer", async (box) => {
  if (editor()) {
    box.append(form(async (f) => {
      const body = { retention: f.retention.value || undefined };
      if (/^\d+$/.test(f.source.value.trim())) body.stream_id = Number(f.source.value.trim()); else body.url = f.source.value.trim();
      if (await attempt(() => api("POST", "/api/v1/recordings", body), "Recording started")) show("recordings");
    }, field("HLS URL, page or stream id", input("source", { required: true, placeholder: "https://…/live.m3u8 or 12" })),
    field("Retention", input("retention", { placeholder: "24h" })), el("button", { class: "primary", type: "submit", text: "Start recording" })));
  }
  const answer = await get("/api/v1/recordings?per_page=100");
  const body = el("tbody", {}, answer.recordings.map(recordingRow));
  watchPreviews(box);
  box.append(el("div", { class: "table-scroll" },
    el("table", {}, el("thead", {}, el("tr", {}, ["Preview", "Recording", "State", "Segments", "Source", ""].map((h) => el("th", { text: h })))), body)));
  handlers.add((event) => {
    if (event.event === "recording_state" && event.recording) {
      const r = event.recording;
      const row = box.querySelector(`tr[data-recording-id="${r.id}"]`);
      if (!row) body.prepend(recordingRow(r));
      // Counters change every second: update them in place, so a button being pressed is never swapped away.
      else if (row.dataset.state === r.state && row.dataset.hasSegments === String(r.segments > 0)) row.querySelector(".counters").textContent = counters(r);
      else row.replaceWith(recordingRow(r));
    }
    if (event.event === "recording_export" && event.export) {
      const note = box.querySelector(`[data-export-for="${event.export.recording_id}"]`);
      if (note) exportNote(note, event.export);
    }
  });
});

/** Thumbnails as the recorder makes them, pushed on its preview channel (binary frames: header length, JSON header, JPEG). */
const thumbnails = new Map();
function watchPreviews(box) {
  const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/stream/ws?target=preview");
  socket.binaryType = "arraybuffer";
  socket.onmessage = (message) => {
    if (typeof message.data === "string") return;
    const length = new DataView(message.data).getUint32(0);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(message.data, 4, length)));
    const url = URL.createObjectURL(new Blob([new Uint8Array(message.data, 4 + length)], { type: "image/jpeg" }));
    if (thumbnails.has(header.recordingId)) URL.revokeObjectURL(thumbnails.get(header.recordingId));
    thumbnails.set(header.recordingId, url);
    const img = box.querySelector(`tr[data-recording-id="${header.recordingId}"] img`);
    if (img) { img.src = url; img.classList.remove("hidden"); }
  };
  cleanups.add(() => socket.close(1000));
}

function counters(r) { return `${r.segments} (${r.missed_segments} missed)`; }

function recordingRow(r) {
  const running = ["starting", "recording", "stalled"].includes(r.state);
  const note = el("div", { class: "muted", dataset: { exportFor: r.id } });
  return el("tr", { dataset: { recordingId: r.id, state: r.state, hasSegments: String(r.segments > 0) } },
    el("td", {}, el("img", { src: thumbnails.get(r.id), alt: "", width: "96", height: "54", class: thumbnails.has(r.id) ? null : "hidden" })),
    el("td", {}, el("a", { class: "mono", href: r.urls.live, target: "_blank", text: r.id.slice(0, 12) }), el("div", { class: "muted", text: when(r.started_at) })),
    el("td", {}, el("span", { class: "badge", dataset: { status: r.state === "recording" ? "live" : "unknown" }, text: r.state })),
    el("td", { class: "counters", text: counters(r) }),
    el("td", {}, el("span", { class: "cell-text", text: r.source_url })),
    el("td", {}, el("div", { class: "row" },
      editor() && running ? button("Stop", () => attempt(() => api("DELETE", `/api/v1/recordings/${r.id}`), "Stopping")) : null,
      editor() && r.segments ? button("Export last 1 min", async () => {
        const made = await attempt(() => api("POST", `/api/v1/recordings/${r.id}/exports`, { start: Math.floor(Date.now() / 1000) - 75, duration: 60, format: "mp4" }));
        if (made) exportNote(note, made.body);
      }) : null), note));
}

function exportNote(note, job) {
  clear(note);
  if (job.state === "done") note.append(el("a", { href: `/api/v1/recordings/${job.recording_id}/exports/${job.id}/file`, download: "", text: "Download the clip" }));
  else note.append(`Export ${job.state}${job.progress ? ` ${Math.round(job.progress * 100)}%` : ""}${job.error ? ": " + job.error : ""}`);
}

// ---------- walls ----------

tab("walls", "Walls", "viewer", async (box) => {
  const answer = await get("/api/v1/walls");
  if (editor()) {
    box.append(form(async (f) => {
      if (await attempt(() => api("POST", "/api/v1/walls", { name: f.name.value.trim(), columns: Number(f.columns.value), rows: Number(f.rows.value), title: f.title.value.trim() || undefined }), "Wall created")) show("walls");
    }, field("Name", input("name", { required: true, pattern: "[a-z0-9][a-z0-9-]{0,39}", placeholder: "newsroom" })), field("Title", input("title")),
    field("Columns", input("columns", { type: "number", min: "1", max: "10", value: "3" })), field("Rows", input("rows", { type: "number", min: "1", max: "10", value: "3" })),
    el("button", { class: "primary", type: "submit", text: "Create wall" })));
  }
  box.append(table(["Wall", "Size", "Tiles", "Updated", ""], answer.walls.map((w) => el("tr", { dataset: { wall: w.name } },
    el("td", {}, el("strong", { text: w.title || w.name }), el("div", { class: "muted mono", text: w.name })),
    el("td", { text: `${w.columns}×${w.rows}` }),
    el("td", { text: String(w.cells.filter((c) => c.stream_id || c.recording_id || c.url).length) }),
    el("td", { class: "muted", text: when(w.updated_at) }),
    el("td", { class: "row" }, el("a", { class: "button", href: `/wall/${w.name}`, text: "Display" }), el("a", { class: "button", href: `/wall/${w.name}/control`, text: "Control & links" }),
      editor() ? button("Delete", async () => { if (confirm(`Delete wall ${w.name}?`) && await attempt(() => api("DELETE", `/api/v1/walls/${w.name}`), "Deleted")) show("walls"); }, { class: "danger" }) : null)))));
});

// ---------- overlays ----------

let pendingKey = null;  // a key just created, shown once when the tab is drawn again

tab("overlays", "Overlays", "editor", async (box) => {
  const answer = await get("/api/v1/communities");
  const preview = el("div", { class: "card", id: "overlay-preview" }, el("h2", { text: "Overlay" }), el("p", { class: "muted", text: "Pick a community to see its browser sources. The overlay key is shown only when it is created or rotated." }));
  box.append(form(async (f) => {
    const made = await attempt(() => api("POST", "/api/v1/communities", { name: f.name.value.trim() }), "Community created");
    if (made) { pendingKey = [made.body.community.id, made.body.overlay_key, made.body.overlay_url]; await show("overlays"); }
  }, field("New community", input("name", { required: true, maxlength: "100" })), el("button", { class: "primary", type: "submit", text: "Create" })));
  box.append(table(["#", "Community", "Created", ""], answer.communities.map((c) => el("tr", { dataset: { community: String(c.id) } },
    el("td", { text: String(c.id) }), el("td", { text: c.name }), el("td", { class: "muted", text: when(c.created_at) }),
    el("td", { class: "row" },
      button("Sources", () => drawSources(c)),
      button("Rotate key", async () => {
        if (!confirm(`Rotate ${c.name}'s overlay key? OBS sources keep working with the old key for the grace period.`)) return;
        const rotated = await attempt(() => api("POST", `/api/v1/communities/${c.id}/overlay_key/rotate`), "Key rotated");
        if (rotated) showKey(c.id, rotated.body.overlay_key, rotated.body.overlay_url);
      }))))), preview);
  if (pendingKey) { showKey(...pendingKey); pendingKey = null; }

  function showKey(id, key, url) {
    const full = new URL(url, location.origin).href;
    clear(preview).append(el("h2", { text: `Overlay of community ${id}` }),
      el("label", {}, "Browser-source URL for OBS (shown once — copy it now)", el("input", { readonly: true, value: full, id: "overlay-url", onfocus: (e) => e.target.select() })),
      el("p", { class: "muted mono", text: `key ${key.slice(0, 8)}…` }),
      el("iframe", { src: url, title: "Overlay preview", style: { width: "100%", aspectRatio: "16 / 9", border: "1px solid #2a3340", borderRadius: "8px", background: "#000" } }));
  }

  async function drawSources(community) {
    const sources = await get(`/api/v1/communities/${community.id}/sources`);
    clear(preview).append(el("h2", { text: `${community.name}: browser sources` }),
      table(["Name", "Kind", "Position", "Size", "Visible", ""], sources.sources.map((s) => el("tr", {},
        el("td", { text: s.name }), el("td", { text: s.kind }), el("td", { text: `${s.x}, ${s.y}` }), el("td", { text: `${s.width}×${s.height}` }),
        el("td", { text: s.visible ? "yes" : "no" }),
        el("td", {}, button("Remove", async () => { if (await attempt(() => api("DELETE", `/api/v1/communities/${community.id}/sources/${s.id}`), "Removed")) drawSources(community); }, { class: "danger" }))))),
      form(async (f) => {
        const body = { name: f.name.value.trim(), kind: f.kind.value, x: Number(f.x.value), y: Number(f.y.value), width: Number(f.width.value), height: Number(f.height.value) };
        if (f.kind.value === "web") body.url = f.target.value.trim();
        if (f.kind.value === "stream") body.stream_id = Number(f.target.value);
        if (f.kind.value === "recording") body.recording_id = f.target.value.trim();
        if (await attempt(() => api("POST", `/api/v1/communities/${community.id}/sources`, body), "Source added")) drawSources(community);
      }, field("Name", input("name", { required: true })),
      field("Kind", el("select", { name: "kind" }, ["captions", "web", "stream", "recording"].map((k) => el("option", { value: k, text: k })))),
      field("URL, stream id or recording", input("target")),
      field("x", input("x", { type: "number", value: "0" })), field("y", input("y", { type: "number", value: "780" })),
      field("Width", input("width", { type: "number", value: "1920", min: "1" })), field("Height", input("height", { type: "number", value: "300", min: "1" })),
      el("button", { type: "submit", text: "Add source" })));
  }
});

// ---------- users, keys, flags, ignore lists, audit ----------

tab("users", "Users", "admin", async (box) => {
  const answer = await get("/api/v1/users?per_page=200");
  box.append(form(async (f) => {
    if (await attempt(() => api("POST", "/api/v1/users", { email: f.email.value.trim(), password: f.password.value, role: f.role.value }), "User created")) show("users");
  }, field("Email", input("email", { type: "email", required: true })), field("Password", input("password", { type: "password", required: true, minlength: "8" })),
  field("Role", roleSelect("viewer")), el("button", { class: "primary", type: "submit", text: "Create user" })));
  box.append(table(["#", "Email", "Role", "State", ""], answer.users.map((u) => {
    const role = roleSelect(u.role);
    role.addEventListener("change", () => attempt(() => api("PATCH", `/api/v1/users/${u.id}`, { role: role.value }), "Role changed"));
    return el("tr", {}, el("td", { text: String(u.id) }), el("td", { text: u.email }), el("td", {}, role),
      el("td", { text: u.disabled ? "disabled" : "active" }),
      el("td", {}, button(u.disabled ? "Enable" : "Disable", async () => { if (await attempt(() => api("PATCH", `/api/v1/users/${u.id}`, { disabled: !u.disabled }))) show("users"); })));
  })));
});

function roleSelect(value) {
  return el("select", { name: "role", "aria-label": "Role" }, ["viewer", "editor", "admin"].map((r) => el("option", { value: r, text: r, selected: r === value })));
}

tab("keys", "API keys", "admin", async (box) => {
  const answer = await get("/api/v1/api_keys");
  const shown = el("div");
  box.append(form(async (f) => {
    const made = await attempt(() => api("POST", "/api/v1/api_keys", { name: f.name.value.trim(), role: f.role.value }));
    if (made) { await show("keys"); document.getElementById("new-key-box")?.append(el("label", {}, "The new key (shown once)", el("input", { readonly: true, value: made.body.key, id: "new-key" }))); }
  }, field("Name", input("name", { required: true })), field("Role", roleSelect("editor")), el("button", { class: "primary", type: "submit", text: "Create key" })));
  shown.id = "new-key-box";
  box.append(shown, table(["#", "Name", "Prefix", "Role", "Last used", ""], answer.api_keys.map((k) => el("tr", {},
    el("td", { text: String(k.id) }), el("td", { text: k.name }), el("td", { class: "mono", text: k.prefix }), el("td", { text: k.role }),
    el("td", { class: "muted", text: when(k.last_used_at) }),
    el("td", {}, k.revoked ? "revoked" : button("Revoke", async () => { if (await attempt(() => api("DELETE", `/api/v1/api_keys/${k.id}`), "Revoked")) show("keys"); }, { class: "danger" }))))));
});

tab("flags", "Feature flags", "viewer", async (box) => {
  const answer = await get("/api/v1/feature_flags");
  box.append(table(["Flag", "Description", "On", "Changed"], answer.feature_flags.map((flag) => {
    const toggle = el("input", { type: "checkbox", checked: flag.enabled, disabled: !admin(), "aria-label": flag.name });
    toggle.addEventListener("change", () => attempt(() => api("PUT", `/api/v1/feature_flags/${flag.name}`, { enabled: toggle.checked }), "Saved"));
    return el("tr", {}, el("td", { class: "mono", text: flag.name }), el("td", { text: flag.description }), el("td", {}, toggle),
      el("td", { class: "muted", text: flag.updated_by ? `${flag.updated_by}, ${when(flag.updated_at)}` : "" }));
  })));
});

tab("ignore", "Ignore lists", "viewer", async (box) => {
  const answer = await get("/api/v1/ignore_lists?per_page=500");
  const types = ["twitch_user", "discord_user", "url", "domain", "channel"];
  if (editor()) {
    box.append(form(async (f) => {
      if (await attempt(() => api("POST", "/api/v1/ignore_lists", { type: f.type.value, value: f.value.value.trim(), note: f.note.value.trim() || undefined }), "Added")) show("ignore");
    }, field("Type", el("select", { name: "type" }, types.map((t) => el("option", { value: t, text: t })))), field("Value", input("value", { required: true })),
    field("Note", input("note")), el("button", { class: "primary", type: "submit", text: "Ignore" })));
  }
  box.append(table(["Type", "Value", "Note", "By", ""], answer.entries.map((e) => el("tr", {},
    el("td", { text: e.type }), el("td", {}, el("span", { class: "cell-text", text: e.value })), el("td", { text: e.note || "" }), el("td", { class: "muted", text: e.created_by || "" }),
    el("td", {}, editor() ? button("Remove", async () => { if (await attempt(() => api("DELETE", `/api/v1/ignore_lists/${e.id}`), "Removed")) show("ignore"); }, { class: "danger" }) : null)))));
});

tab("audit", "Audit log", "admin", async (box) => {
  const answer = await get("/api/v1/audit?per_page=100");
  box.append(table(["When", "Who", "What", "Entity", "Changes"], answer.entries.map((e) => el("tr", {},
    el("td", { class: "muted", text: when(e.at) }), el("td", { text: e.actor }), el("td", { text: e.action }),
    el("td", { text: `${e.entity}${e.entity_id ? " " + e.entity_id : ""}` }),
    el("td", {}, el("span", { class: "cell-text mono", text: JSON.stringify(e.changes) }))))));
});

// ---------- page ----------

async function show(id) {
  const chosen = tabs.find((t) => t.id === id && atLeast(who, t.role)) || tabs.find((t) => atLeast(who, t.role));
  current = chosen.id;
  handlers.clear();
  for (const cleanup of cleanups) cleanup();
  cleanups.clear();
  for (const button of document.querySelectorAll(".tabs button")) button.setAttribute("aria-selected", String(button.dataset.tab === current));
  history.replaceState(null, "", "#" + current);
  const box = el("div", { id: "panel-" + current, role: "tabpanel" });
  try {
    await chosen.draw(box);
  } catch (error) {
    if (error.status === 401) return signIn();
    box.append(el("p", { class: "error", text: error.message }));
  }
  clear(panel).append(box);
}

async function start() {
  who = await session();
  if (!who.signed_in) return signIn();
  panel = el("div");
  const visible = tabs.filter((t) => atLeast(who, t.role));
  clear(app).append(topbar(who, "/admin"), el("main", {},
    el("div", { class: "tabs", role: "tablist" }, visible.map((t) => el("button", { type: "button", role: "tab", dataset: { tab: t.id }, text: t.label, onclick: () => show(t.id) }))),
    panel));
  app.removeAttribute("aria-busy");
  await show(location.hash.slice(1) || "streams");
  liveEvents({
    types: ["stream_created", "stream_updated", "stream_deleted", "stream_status", "stream_locked", "stream_unlocked", "recording_state", "recording_export"],
    onState: setConnection,
    onOpen: () => { document.body.dataset.live = "true"; },
    onEvent: (event) => { for (const handler of handlers) handler(event); },
  });
}

start().catch((error) => {
  if (error.status === 401) return signIn();
  app.textContent = "The admin page could not load: " + error.message;
});
