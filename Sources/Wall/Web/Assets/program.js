// The program control page: the live preview of a Stream Manager program with its layers drawn over it
// (drag a layer to move it, its corner to resize it), the layer list with visibility toggles, start / stop /
// pause / resume, and the live state. Everything comes from the program's channels on /api/stream/ws:
// `preview` (JPEG frames), `state` (fps, dropped frames, uptime) and `layers` (every change by anyone).
import { api, get, session, el, clear, liveEvents, toast, attempt, atLeast, topbar, setConnection, clock, signIn, announcePresenceAt } from "/assets/api.js";

const app = document.getElementById("app");
const name = decodeURIComponent(location.pathname.split("/")[2] || "");
const path = `/api/v1/programs/${encodeURIComponent(name)}`;
const channel = (target, extra = "") => `/api/stream/ws?target=${target}&program=${encodeURIComponent(name)}${extra}`;
let who = null;
let canEdit = false;
let program = null;
let render = {};
let selected = null;          // the id of the layer picked in the list or on the preview
let dragging = null;          // {id, mode: "move"|"resize", startX, startY, from: {x, y, width, height}, now}
let previewURL = null;
let previewFrames = 0;
const chat = [];               // the newest chat lines and moderation notes, newest last
const presence = new Map();    // session → {name, role, until}

const kindLabel = { source: "Source", wall: "Wall", captions: "Captions", text: "Text", image: "Image", slate: "Slate" };

function describe(layer) {
  if (layer.kind === "text" || layer.kind === "slate") return layer.text || "";
  if (layer.kind === "source") return layer.recording_id ? `recording ${layer.recording_id.slice(0, 8)}…` : layer.stream_id ? `stream ${layer.stream_id}` : layer.url || "";
  if (layer.kind === "captions") return `community ${layer.community_id}`;
  if (layer.kind === "wall") return `wall ${layer.wall}`;
  if (layer.kind === "image") return layer.image_id ? `image ${layer.image_id.slice(0, 8)}…` : "";
  return "";
}

/** Layers top first, as people read a layer list. */
const topFirst = () => [...program.layers].sort((a, b) => (b.z - a.z) || (b.id - a.id));

/** Runs an API call, shows its error as a toast; answers whether it worked (and calls `done` if so). */
async function change(promise, done) {
  const result = await attempt(() => promise);
  if (result !== undefined && done) done(result);
  return result !== undefined;
}

// ---------- drawing ----------

function drawLayers() {
  const list = document.getElementById("layer-list");
  if (!list) return;
  clear(list).append(...topFirst().map((layer) => el("li", {
    class: "layer-item", dataset: { layerId: String(layer.id), kind: layer.kind }, "aria-selected": String(selected === layer.id),
    onclick: (event) => { if (event.target.tagName !== "INPUT") select(layer.id); },
  },
  el("input", { type: "checkbox", class: "visible", checked: layer.visible, disabled: !canEdit, "aria-label": `Show layer ${layer.id}`,
    onchange: (event) => change(api("PATCH", `${path}/layers/${layer.id}`, { visible: event.target.checked })) }),
  el("span", { class: "badge", text: kindLabel[layer.kind] || layer.kind }),
  layer.id === program.audio_layer_id ? el("span", { class: "badge heard", text: "audio", title: "The program carries this layer's sound" }) : null,
  el("span", { class: "layer-text", text: describe(layer) }),
  el("span", { class: "muted mono", text: `${layer.x},${layer.y} ${layer.width}×${layer.height}` }),
  canEdit ? el("button", { type: "button", class: "danger", "aria-label": `Remove layer ${layer.id}`, text: "✕",
    onclick: () => { if (confirm(`Remove this ${layer.kind} layer?`)) change(api("DELETE", `${path}/layers/${layer.id}`)); } }) : null)));
  drawBoxes();
}

/** The layers' outlines over the preview, in percent of the canvas, so they scale with it. */
function drawBoxes() {
  const boxes = document.getElementById("boxes");
  if (!boxes) return;
  clear(boxes).append(...[...program.layers].sort((a, b) => (a.z - b.z) || (a.id - b.id)).filter((l) => l.visible || l.id === selected).map((layer) => {
    const shown = dragging && dragging.id === layer.id ? dragging.now : layer;
    const box = el("div", {
      class: "layer-box", dataset: { layerId: String(layer.id), selected: String(selected === layer.id), hidden: String(!layer.visible) },
      title: `${kindLabel[layer.kind]} ${describe(layer)}`,
      style: { left: pct(shown.x, program.width), top: pct(shown.y, program.height), width: pct(shown.width, program.width), height: pct(shown.height, program.height) },
      onpointerdown: (event) => begin(event, layer, "move"),
    });
    if (canEdit && selected === layer.id) box.append(el("div", { class: "resize", "aria-label": "Resize", onpointerdown: (event) => begin(event, layer, "resize") }));
    return box;
  }));
}

const pct = (value, total) => `${(value / total) * 100}%`;

function drawState() {
  const box = document.getElementById("state");
  if (!box) return;
  const uptime = render.isLive && render.startTime ? clock((Date.now() - Date.parse(render.startTime)) / 1000) : "—";
  const stat = (label, value, key) => el("div", { class: "stat-item", dataset: { stat: key } }, el("span", { class: "muted", text: label }), el("strong", { text: String(value) }));
  clear(box).append(
    stat("State", render.isLive ? (render.isPaused ? "paused" : "live") : program.state === "stopped" ? "stopped" : "starting", "state"),
    stat("FPS", render.isLive ? `${(render.fps || 0).toFixed(1)} / ${render.targetFPS}` : "—", "fps"),
    stat("Dropped", render.droppedFrames ?? 0, "dropped"),
    stat("Frames", render.frameCount ?? 0, "frames"),
    stat("Uptime", uptime, "uptime"),
    stat("Speed", render.isLive ? `${(render.speed || 0).toFixed(2)}×` : "—", "speed"),
    stat("Bitrate", render.bitrate ? `${Math.round(render.bitrate)} kbit/s` : "—", "bitrate"),
    stat("Restarts", render.restarts ?? 0, "restarts"));
  const error = document.getElementById("render-error");
  if (error) error.textContent = render.error || "";
  // At a glance: on air or not, what is heard, where it goes.
  const air = document.getElementById("on-air");
  if (air) {
    const word = program.state === "stopped" ? "off air" : !render.isLive ? "starting" : render.isPaused ? "paused" : "live";
    air.textContent = word;
    air.dataset.status = word === "live" ? "live" : word === "off air" ? "offline" : "unknown";
  }
  const audio = program.layers.find((l) => l.id === program.audio_layer_id);
  const heard = document.getElementById("heard");
  if (heard) heard.textContent = audio ? `Audio: ${describe(audio)}` : "Audio: silence";
  const pushes = document.getElementById("pushes");
  if (pushes) {
    const outputs = render.outputs || [];
    const failing = outputs.filter((o) => o.lastErrorAt && Date.now() - Date.parse(o.lastErrorAt) < 5000);
    pushes.textContent = outputs.length === 0 ? "HLS only" : `RTMP: ${outputs.length} target${outputs.length > 1 ? "s" : ""}`
      + (failing.length ? ` · ${failing.length} reconnecting` : " · sending");
    pushes.dataset.status = failing.length ? "unknown" : "ok";
  }
  document.body.dataset.programState = program.state;
  for (const [action, shown] of [["start", program.state === "stopped"], ["stop", program.state !== "stopped"],
    ["pause", program.state === "running"], ["resume", program.state === "paused"]]) {
    const button = document.getElementById(`do-${action}`);
    if (button) button.classList.toggle("hidden", !shown);
  }
}

// ---------- selecting, moving, resizing ----------

function select(id) {
  selected = selected === id ? null : id;
  drawLayers();
}

function begin(event, layer, mode) {
  if (!canEdit || event.button !== 0) return;
  event.preventDefault();
  event.stopPropagation();
  selected = layer.id;
  const from = { x: layer.x, y: layer.y, width: layer.width, height: layer.height };
  dragging = { id: layer.id, mode, startX: event.clientX, startY: event.clientY, from, now: { ...from }, moved: false };
  event.target.setPointerCapture?.(event.pointerId);
  drawLayers();
}

function onPointerMove(event) {
  if (!dragging) return;
  const stage = document.getElementById("stage");
  const scale = program.width / stage.clientWidth;
  const dx = Math.round((event.clientX - dragging.startX) * scale), dy = Math.round((event.clientY - dragging.startY) * scale);
  const { from } = dragging;
  if (Math.abs(dx) + Math.abs(dy) > 1) dragging.moved = true;
  if (dragging.mode === "move") {
    // The layer must keep overlapping the canvas (the API refuses one that lies entirely off it).
    dragging.now.x = Math.min(program.width - 1, Math.max(1 - from.width, from.x + dx));
    dragging.now.y = Math.min(program.height - 1, Math.max(1 - from.height, from.y + dy));
  } else {
    dragging.now.width = Math.max(8, Math.min(program.width * 4, from.width + dx));
    dragging.now.height = Math.max(8, Math.min(program.height * 4, from.height + dy));
  }
  drawBoxes();
}

function onPointerUp() {
  if (!dragging) return;
  const { id, mode, now, from, moved } = dragging;
  dragging = null;
  if (!moved) { drawBoxes(); return; }
  const body = mode === "move" ? { x: now.x, y: now.y } : { width: now.width, height: now.height };
  // Shown at once; the layers channel confirms (or the error puts it back).
  const layer = program.layers.find((l) => l.id === id);
  if (layer) Object.assign(layer, body);
  drawLayers();
  change(api("PATCH", `${path}/layers/${id}`, body)).then((ok) => {
    if (!ok && layer) { Object.assign(layer, mode === "move" ? { x: from.x, y: from.y } : { width: from.width, height: from.height }); drawLayers(); }
  });
}

// ---------- channels ----------

function applyLayers(payload) {
  if (payload.program !== name) return;
  if (payload.layers) program.layers = payload.layers;
  if (payload.layer) {
    const index = program.layers.findIndex((l) => l.id === payload.layer.id);
    if (index >= 0) program.layers[index] = payload.layer; else program.layers.push(payload.layer);
  }
  if (payload.op === "layer_deleted") program.layers = program.layers.filter((l) => l.id !== payload.layer_id);
  if (Array.isArray(payload.order)) {
    const z = new Map(payload.order.map((id, index) => [id, index]));
    program.layers = program.layers.filter((l) => z.has(l.id));
    for (const layer of program.layers) layer.z = z.get(layer.id);
  }
  if (payload.state) program.state = payload.state;
  if (payload.op === "deleted") { toast("This program was deleted.", "error"); document.body.dataset.deleted = "true"; }
  drawLayers();
  drawState();
  drawWallPicker();
}

// ---------- the wall picker ----------

let walls = [];

/** The program's wall layer (the lowest, if there are several). */
const wallLayer = () => [...program.layers].filter((l) => l.kind === "wall").sort((a, b) => a.z - b.z)[0];

function drawWallPicker() {
  const picker = document.getElementById("wall-picker");
  if (!picker) return;
  const layer = wallLayer();
  const current = layer && layer.visible ? layer.wall : "";
  const names = walls.map((w) => w.name);
  if (current && !names.includes(current)) names.push(current);
  clear(picker).append(el("option", { value: "", text: "No wall" }),
    ...names.map((wall) => el("option", { value: wall, text: (walls.find((w) => w.name === wall) || {}).title || wall })));
  picker.value = current;
}

/** Shows a wall: switches the wall layer to it (live when the grid is the same), or adds one over the whole
 * canvas, under every other layer; "No wall" hides the wall layer. */
function pickWall(wall) {
  const layer = wallLayer();
  if (!wall) {
    if (layer) change(api("PATCH", `${path}/layers/${layer.id}`, { visible: false }));
    return;
  }
  if (layer) {
    change(api("PATCH", `${path}/layers/${layer.id}`, { wall, visible: true }), () => toast(`Showing the wall ${wall}`));
  } else {
    const lowest = Math.min(0, ...program.layers.map((l) => l.z)) - 1;
    change(api("POST", `${path}/layers`, { kind: "wall", wall, x: 0, y: 0, width: program.width, height: program.height, z: Math.max(-1000, lowest) }),
      () => toast(`Showing the wall ${wall}`));
  }
}

async function loadWalls() {
  const result = await attempt(() => get("/api/v1/walls"));
  if (result && Array.isArray(result.walls)) walls = result.walls;
  drawWallPicker();
}

function showPreview(buffer) {
  const view = new DataView(buffer);
  const length = view.getUint32(0);
  let header;
  try { header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length))); } catch { return; }
  if (header.program !== name || header.format !== "jpeg") return;
  channelFrameAt = Date.now();
  showFrame(new Blob([new Uint8Array(buffer, 4 + length)], { type: "image/jpeg" }));
}

function showFrame(jpeg) {
  const image = document.getElementById("preview");
  if (!image) return;
  const url = URL.createObjectURL(jpeg);
  image.onload = () => { if (previewURL && previewURL !== url) URL.revokeObjectURL(previewURL); previewURL = url; };
  image.src = url;
  previewFrames += 1;
  document.body.dataset.previewFrames = String(previewFrames);
}

// The preview channel carries frames on the server instance that renders the program. A page connected to
// another instance gets none there, and fetches the newest frame instead (that instance passes it on).
let channelFrameAt = 0;
let fetchingFrame = false;
let frameWidth = 640;  // the widest preview the server writes: 640, or the program's own width below that
async function fetchFrame() {
  if (fetchingFrame || Date.now() - channelFrameAt < 2000 || !render.isLive) return;
  fetchingFrame = true;
  try {
    const response = await fetch(`/programs/${encodeURIComponent(name)}/preview-${frameWidth}.jpg`, { credentials: "same-origin", cache: "no-store" });
    if (response.ok && Date.now() - channelFrameAt >= 2000) showFrame(await response.blob());
  } catch { /* the next try comes in a moment */ } finally {
    fetchingFrame = false;
  }
}

// ---------- chat and presence ----------

function onChat(message) {
  const payload = message.payload || {};
  if (payload.program !== name) return;
  if (message.type === "presence") {
    if (payload.state === "gone") presence.delete(payload.session);
    else presence.set(payload.session, { name: payload.name, role: payload.role, until: Date.now() + (payload.ttl || 30) * 1000 });
    drawPresence();
    return;
  }
  if (message.type === "moderation" && payload.action === "message_deleted" && payload.message_id) {
    for (const line of chat) if (line.id === payload.message_id) line.deleted = true;
  }
  chat.push(message.type === "chat" ? { kind: "chat", id: payload.id, source: payload.source, channel: payload.channel, author: payload.author, text: payload.text }
    : { kind: "moderation", source: payload.source, channel: payload.channel, text: moderationText(payload) });
  while (chat.length > 100) chat.shift();
  drawChat();
}

function moderationText(payload) {
  switch (payload.action) {
    case "message_deleted": return `A message${payload.user ? ` by ${payload.user}` : ""} was deleted`;
    case "user_timed_out": return `${payload.user} was timed out for ${payload.seconds} s`;
    case "user_banned": return `${payload.user} was banned`;
    case "chat_cleared": return "The chat was cleared";
    default: return payload.action;
  }
}

function drawChat() {
  const box = document.getElementById("chat-lines");
  if (!box) return;
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  clear(box).append(...chat.map((line) => el("li", { class: `chat-line ${line.kind}`, dataset: { deleted: String(!!line.deleted), id: line.id || "" } },
    el("span", { class: "badge", text: line.source }),
    line.author ? el("strong", { text: line.author }) : null,
    el("span", { class: "chat-text", text: line.deleted ? "(deleted)" : line.text }))));
  if (nearBottom) box.scrollTop = box.scrollHeight;
}

function drawPresence() {
  const box = document.getElementById("presence");
  if (!box) return;
  const now = Date.now();
  for (const [id, who] of presence) if (who.until < now) presence.delete(id);
  const names = [...new Set([...presence.values()].map((who) => who.name))];
  clear(box).append(...names.map((who) => el("span", { class: "who badge", text: who })));
}

// ---------- layout ----------

function layout() {
  const action = (verb, label, primary = false) => el("button", { type: "button", id: `do-${verb}`, text: label, class: primary ? "primary hidden" : "hidden",
    onclick: () => change(api("POST", `${path}/${verb}`), () => toast(`${label}: done`)) });
  const addText = canEdit ? el("form", { class: "row add-text", onsubmit: (event) => {
    event.preventDefault();
    const field = event.target.querySelector("input");
    const text = field.value.trim();
    if (!text) return;
    change(api("POST", `${path}/layers`, { kind: "text", text, x: Math.round(program.width * 0.05), y: Math.round(program.height * 0.8),
      width: Math.round(program.width * 0.6), height: Math.max(40, Math.round(program.height / 12)) }), () => { field.value = ""; });
  } }, el("input", { placeholder: "Lower third text", "aria-label": "New text layer", maxlength: "500" }), el("button", { type: "submit", text: "Add text" })) : null;
  // An image: uploaded (PNG or JPEG, up to 4 MiB), then laid on the program at its own size, top left.
  const addImage = canEdit ? el("label", { class: "button add-image" }, "Add image…",
    el("input", { type: "file", id: "image-file", accept: "image/png,image/jpeg", class: "visually-hidden", onchange: async (event) => {
      const file = event.target.files[0];
      event.target.value = "";
      if (!file) return;
      if (file.size > 4 * 1024 * 1024) { toast("That picture is over 4 MiB.", "error"); return; }
      const uploaded = await attempt(() => api("POST", `/api/v1/images?name=${encodeURIComponent(file.name.slice(0, 100))}`, file));
      if (uploaded === undefined) return;
      change(api("POST", `${path}/layers`, { kind: "image", image_id: uploaded.body.id, x: 0, y: 0 }), () => toast(`${file.name}: added`));
    } })) : null;
  return [
    topbar(who, "", [el("a", { class: "button", href: program.hls_url, target: "_blank", text: "Output (HLS)" })]),
    el("div", { class: "program-control" },
      el("section", { "aria-label": "Program" },
        el("div", { class: "toolbar" },
          el("h1", { text: program.title || program.name }),
          el("span", { id: "on-air", class: "badge on-air", "aria-live": "polite" }),
          el("span", { class: "muted", text: `${program.width}×${program.height} · ${program.fps} fps · ${program.video_bitrate} kbit/s` }),
          el("span", { id: "heard", class: "muted" }),
          el("span", { id: "pushes", class: "muted" }),
          canEdit ? el("div", { class: "row" }, action("start", "Start", true), action("pause", "Pause"), action("resume", "Resume", true), action("stop", "Stop"))
            : el("span", { class: "readonly-note", text: "View only: you can watch, not change, this program." })),
        el("div", { id: "stage", class: "stage", style: { aspectRatio: `${program.width} / ${program.height}` } },
          el("img", { id: "preview", alt: `Preview of ${program.name}` }),
          el("div", { id: "boxes", class: "boxes" })),
        el("div", { id: "state", class: "program-state", "aria-live": "off" }),
        el("p", { id: "render-error", class: "error", role: "alert" })),
      el("aside", { class: "layers", "aria-label": "Layers" },
        el("h2", { text: "Layers" }),
        el("p", { class: "muted", text: canEdit ? "Top first. Toggle to show or hide; pick one and drag it on the preview, or its corner to resize." : "Top first." }),
        el("ul", { id: "layer-list", class: "stack" }),
        addText,
        addImage,
        el("h2", { text: "Wall" }),
        el("select", { id: "wall-picker", "aria-label": "The wall this program shows", disabled: !canEdit,
          onchange: (event) => pickWall(event.target.value) }),
        el("h2", { text: "Here now" }),
        el("div", { id: "presence", class: "row" }),
        el("h2", { text: "Chat" }),
        el("p", { class: "muted", text: program.chat_channels.length ? program.chat_channels.join(" · ") : "No chat channels linked (chat_channels)." }),
        el("ul", { id: "chat-lines", class: "chat-lines" }))),
  ].filter(Boolean);
}

async function start() {
  who = await session();
  if (!who.signed_in) return signIn();
  canEdit = !who.scope && atLeast(who, "editor");
  program = await get(path);
  render = program.stream || {};
  frameWidth = Math.min(640, program.width || 640);
  document.title = `${program.title || program.name} · Program · StreamHub`;
  clear(app).append(...layout());
  app.removeAttribute("aria-busy");
  document.body.dataset.canEdit = String(canEdit);
  drawLayers();
  drawState();
  loadWalls();
  window.addEventListener("pointermove", onPointerMove);
  window.addEventListener("pointerup", onPointerUp);
  const refused = (code) => toast(code === 4404 ? "This program is gone." : "This page's session ended. Sign in again.", "error");
  let open = 0;
  const opened = () => { open += 1; if (open >= 2) document.body.dataset.live = "true"; };
  liveEvents({
    path: channel("layers"), onState: setConnection, onRefused: refused, onOpen: opened,
    onEvent: (message) => { if (message.type === "layers" || message.type === "layerUpdate") applyLayers(message.payload || {}); },
  });
  liveEvents({
    path: channel("state"), onRefused: refused, onOpen: opened,
    onEvent: (message) => {
      if (message.type !== "stateUpdate" || !message.payload || !message.payload.program || message.payload.program.name !== name) return;
      render = message.payload.stream || {};
      drawState();
    },
  });
  liveEvents({ path: channel("preview", "&fps=5&width=640"), onRefused: () => {}, onEvent: () => {}, onBinary: showPreview });
  liveEvents({ path: channel("chat"), onRefused: () => {}, onEvent: onChat });
  announcePresenceAt(`${path}/presence`, "control");
  setInterval(() => { drawState(); drawPresence(); }, 1000);  // the uptime; presence lapses
  setInterval(fetchFrame, 500);
}

start().catch((error) => {
  app.removeAttribute("aria-busy");
  clear(app).append(el("main", { class: "narrow" }, el("section", { class: "card" }, el("h2", { text: "This program did not load" }),
    el("p", { text: error.message }), el("a", { class: "button", href: "/", text: "Go to the front page" }))));
});
