// The wall display: a full-screen grid of tiles that follows the wall's state live, plays what each cell
// shows (native HLS or MediaSource, or a sandboxed page), falls back when a stream goes offline or fails,
// hears exactly one tile, and keeps playing through a lost connection while it reconnects.
import { session, el, clear, liveEvents, toast, announcePresence, clock, statusBadge, streamName, streamWhere, signIn } from "/assets/api.js";
import { WallState, wallName, tilesOf, playable, cellBody, putCell, setAudio, shortcuts, wallKeys } from "/assets/wallstate.js";
import { play } from "/assets/player.js";

const root = document.getElementById("wall");
const state = new WallState();
const tiles = new Map();   // first cell → Tile
let who = null;
let statusBanner = null;

/** Seconds without progress after which a playing video counts as failed. */
const STALL_SECONDS = 12;
/** A tile whose video errors restarts its player this many times (after 1 s, then 2 s) before it shows
 *  "Can't play"; the count starts again once a player has played for PLAYED_MS. */
const QUICK_RETRIES = 2;
const PLAYED_MS = 3000;
const MEDIA_ERRORS = { 1: "aborted", 2: "network error", 3: "decode error", 4: "not supported" };

/** Why a <video> stopped, in words: the browser's error code and message when it gives them. */
function mediaError(video) {
  const error = video.error;
  if (!error) return "the browser could not play it";
  const detail = [MEDIA_ERRORS[error.code], error.message].filter(Boolean).join(": ");
  return "the browser could not play it" + (detail ? ` (${detail.slice(0, 160)})` : "");
}

class Tile {
  constructor(cell) {
    this.cell = cell;
    this.node = el("div", { class: "tile", role: "gridcell", tabindex: "0", dataset: { cell: String(cell), state: "loading" } });
    this.media = null;        // <video> or <iframe>
    this.player = null;
    this.url = null;          // what plays now
    this.shown = null;        // what was last asked to play (kept across restarts, unlike url)
    this.mode = "primary";    // or "fallback"
    this.failedAt = 0;
    this.quickRetries = 0;    // restarts since a player last played for PLAYED_MS
    this.retryTimer = null;
    this.playingSince = 0;    // when the current player started playing (performance.now())
    this.lastTime = -1;
    this.lastProgress = performance.now();
    this.overlay = el("div", { class: "overlay" });
    this.label = el("div", { class: "label" });
    this.number = el("span", { class: "number", text: String(cell) });
    this.badge = el("span", { class: "behind hidden" });
    this.node.append(this.overlay, this.label, this.number, this.badge);
    this.node.addEventListener("dblclick", () => toggleFullscreen(this.node));
  }

  /** Shows `spec` (from `playable`), reusing what plays when it is the same. */
  show(spec) {
    const url = spec ? spec.url : null;
    if (url === this.url && this.media) return;
    if (url !== this.shown) { this.shown = url; this.quickRetries = 0; }
    this.stop();
    this.url = url;
    if (!spec) return;
    if (spec.kind === "frame") {
      this.media = el("iframe", { src: spec.url, title: "stream page", allow: "autoplay; fullscreen; encrypted-media",
        sandbox: "allow-scripts allow-same-origin allow-presentation", referrerpolicy: "no-referrer", loading: "eager" });
      this.media.addEventListener("load", () => this.setState(this.mode === "fallback" ? "fallback" : "playing"));
      this.node.prepend(this.media);
      this.setState("loading");
      return;
    }
    const video = el("video", { muted: true, playsinline: true, autoplay: true, preload: "auto" });
    video.muted = true;
    video.addEventListener("playing", () => {
      this.lastProgress = performance.now();
      if (!this.playingSince) this.playingSince = this.lastProgress;
      this.setState(this.mode === "fallback" ? "fallback" : "playing"); });
    video.addEventListener("timeupdate", () => {
      if (video.currentTime !== this.lastTime) { this.lastTime = video.currentTime; this.lastProgress = performance.now(); }
    });
    video.addEventListener("error", () => this.failed(mediaError(video)));
    video.addEventListener("playerfailed", (event) => this.failed(event.detail));
    video.addEventListener("ended", () => this.failed("the stream ended", false));
    this.media = video;
    this.node.prepend(video);
    this.setState("loading");
    this.lastProgress = performance.now();
    this.player = play(video, spec.url);
    applyAudio();
  }

  stop() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.playingSince = 0;
    if (this.player) this.player.stop();
    if (this.media) this.media.remove();
    this.player = null;
    this.media = null;
    this.url = null;
    this.lastTime = -1;
  }

  setState(value, why = "") {
    this.node.dataset.state = value;
    clear(this.overlay);
    if (value === "offline") this.overlay.append(el("strong", { text: "Offline" }), el("span", { text: why || "The stream is not live." }));
    else if (value === "failed") this.overlay.append(el("strong", { text: "Can't play" }), el("span", { text: why || "Retrying…" }));
    else if (value === "loading") this.overlay.append(el("span", { text: "Loading…" }));
  }

  /** The video stopped: `why` in words; `glitch` false when it ended or stalled for long (no quick restart:
   *  the stream is over or stuck, and the fallback should show). */
  failed(why, glitch = true) {
    if (!this.url) return;
    // A live source hiccups (a segment gone before it was fetched, a playlist the browser would not parse,
    // a young stream): the tile starts its player again after 1 s, then 2 s, before it shows "Can't play".
    // A player that played a while has proved the source, so its next error gets the quick restarts again.
    const now = performance.now();
    if (this.playingSince && now - this.playingSince >= PLAYED_MS) this.quickRetries = 0;
    if (glitch && this.quickRetries < QUICK_RETRIES) {
      this.quickRetries += 1;
      console.warn(`tile ${this.cell}: ${why}; starting again`);
      this.stop();
      this.setState("loading", "");
      this.retryTimer = setTimeout(() => { this.retryTimer = null; update(this.cell); }, 1000 * this.quickRetries);
      return;
    }
    this.failedAt = now;
    this.failure = why;
    update(this.cell);
  }

  /** Called every 2 s: a video that stopped moving has failed. */
  watch() {
    const video = this.media;
    if (!(video instanceof HTMLVideoElement)) return;
    const playingState = this.node.dataset.state === "playing" || this.node.dataset.state === "fallback";
    if (playingState && performance.now() - this.lastProgress > STALL_SECONDS * 1000) this.failed("no new video for " + STALL_SECONDS + " s", false);
  }

  destroy() {
    this.stop();
    this.node.remove();
  }
}

/** Tries the tile's own stream in a hidden, muted video while the fallback plays; switches back once it plays. */
function probe(tile) {
  if (tile.probing) return;
  const spec = playable(state, tile.spot.data);
  if (!spec || spec.kind !== "video") { tile.failedAt = 0; update(tile.cell); return; }
  const video = el("video", { muted: true, playsinline: true, class: "hidden" });
  video.muted = true;
  tile.probing = true;
  document.body.append(video);
  const player = play(video, spec.url);
  const done = (works) => {
    clearTimeout(timer);
    player.stop();
    video.remove();
    tile.probing = false;
    if (works) { tile.failedAt = 0; update(tile.cell); } else { tile.failedAt = performance.now(); }
  };
  const timer = setTimeout(() => done(false), 10000);
  video.addEventListener("playing", () => done(true), { once: true });
  video.addEventListener("error", () => done(false), { once: true });
  video.addEventListener("playerfailed", () => done(false), { once: true });
}

function toggleFullscreen(node) {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else if (node) node.requestFullscreen().catch(() => {});
}

/** Lays the tiles out and gives each what it should play now. */
function render() {
  const wall = state.wall;
  if (!wall) {
    for (const tile of tiles.values()) tile.destroy();
    tiles.clear();
    clear(root).append(el("div", { class: "wall-empty", text: "This wall was deleted." }));
    return;
  }
  root.style.gridTemplateColumns = `repeat(${wall.columns}, 1fr)`;
  root.style.gridTemplateRows = `repeat(${wall.rows}, 1fr)`;
  const layout = tilesOf(wall);
  const keep = new Set(layout.map((t) => t.cell));
  for (const [cell, tile] of tiles) if (!keep.has(cell)) { tile.destroy(); tiles.delete(cell); }
  root.querySelector(".wall-empty")?.remove();
  for (const spot of layout) {
    let tile = tiles.get(spot.cell);
    if (!tile) { tile = new Tile(spot.cell); tiles.set(spot.cell, tile); root.append(tile.node); }
    tile.spot = spot;
    tile.node.style.gridColumn = `${spot.x + 1} / span ${spot.w}`;
    tile.node.style.gridRow = `${spot.y + 1} / span ${spot.h}`;
    update(spot.cell);
  }
  for (const slot of root.querySelectorAll(".slot")) slot.remove();
  const covered = (n) => layout.some((spot) => spot.covers(n));
  for (let n = 1; n <= wall.columns * wall.rows; n++) {
    if (covered(n)) continue;
    root.append(el("div", { class: "slot", "aria-hidden": "true", text: String(n),
      style: { gridColumn: `${(n - 1) % wall.columns + 1}`, gridRow: `${Math.floor((n - 1) / wall.columns) + 1}` } }));
  }
  if (!layout.length) root.append(el("div", { class: "wall-empty", text: `Wall ${wall.title || wall.name}: nothing to show yet. Assign streams on the control page.` }));
  applyAudio();
}

/** Decides what one tile plays: its stream, its fallback, or nothing (offline, failed). */
function update(cellNumber) {
  const tile = tiles.get(cellNumber);
  if (!tile || !tile.spot) return;
  const cell = tile.spot.data;
  const stream = cell.stream_id ? state.streams.get(cell.stream_id) : null;
  const fallback = cell.fallback_stream_id ? state.streams.get(cell.fallback_stream_id) : null;
  const primary = playable(state, cell);
  const recentlyFailed = tile.failedAt > 0;
  const offline = stream && stream.status === "offline" && !(primary && primary.recording);
  let spec = primary, mode = "primary";
  if ((offline || recentlyFailed || !primary) && fallback && fallback.status !== "offline") {
    spec = playable(state, cell, fallback.id);
    mode = "fallback";
  } else if (offline) {
    spec = null;
  } else if (recentlyFailed) {
    spec = null;
  }
  tile.mode = mode;
  tile.node.dataset.blurred = cell.blurred ? "true" : "false";
  if (cell.stream_id && mode === "primary") tile.node.dataset.streamId = String(cell.stream_id);
  else if (mode === "fallback") tile.node.dataset.streamId = String(fallback.id);
  else delete tile.node.dataset.streamId;
  const recordingID = spec && spec.recording;
  if (recordingID) tile.node.dataset.recordingId = recordingID; else delete tile.node.dataset.recordingId;
  tile.show(spec);
  if (tile.media) {
    tile.media.style.transform = cell.rotation ? `rotate(${cell.rotation}deg)` : "";
    rotateFit(tile, cell.rotation || 0);
  }
  if (!spec) tile.setState(offline ? "offline" : recentlyFailed ? "failed" : "offline", recentlyFailed ? tile.failure : "");
  else if (mode === "fallback" && tile.node.dataset.state === "playing") tile.setState("fallback");
  else if (mode === "primary" && tile.node.dataset.state === "fallback") tile.setState("playing");
  drawLabel(tile, cell, mode === "fallback" ? fallback : stream, spec);
}

/** A quarter-turned video fills the tile with its width and height swapped. */
function rotateFit(tile, rotation) {
  const media = tile.media;
  if (rotation === 90 || rotation === 270) {
    const box = tile.node.getBoundingClientRect();
    Object.assign(media.style, { width: `${box.height}px`, height: `${box.width}px`, left: `${(box.width - box.height) / 2}px`, top: `${(box.height - box.width) / 2}px`, inset: "auto" });
  } else {
    Object.assign(media.style, { width: "", height: "", left: "", top: "", inset: "" });
  }
}

function drawLabel(tile, cell, stream, spec) {
  clear(tile.label);
  if (stream) {
    tile.label.append(statusBadge(stream.status), el("span", { text: streamName(stream) }));
    const where = streamWhere(stream);
    if (where) tile.label.append(el("span", { class: "where", text: where }));
  } else if (cell.recording_id) {
    const recording = state.recordings.get(cell.recording_id);
    tile.label.append(el("span", { class: "badge", dataset: { status: recording && recording.state === "recording" ? "live" : "unknown" }, text: recording ? recording.state : "recording" }),
      el("span", { text: "Recording " + cell.recording_id.slice(0, 8) }));
  } else if (cell.url) {
    let host = cell.url;
    try { host = new URL(cell.url).host; } catch { /* shown as given */ }
    tile.label.append(el("span", { text: host }));
  }
  if (tile.mode === "fallback") tile.label.append(el("span", { class: "where", text: "(fallback)" }));
  const audible = tile.node.dataset.audible === "true";
  tile.label.append(el("span", { class: "speaker", text: audible ? "Audio" : "" }));
  if (spec && spec.behind) {
    tile.badge.textContent = "behind live by " + clock(spec.behind);
    tile.badge.classList.remove("hidden");
  } else {
    tile.badge.classList.add("hidden");
  }
}

let soundBlocked = false;
/** Exactly one tile is heard (the one covering the audio cell), or none. */
function applyAudio() {
  const wall = state.wall;
  const audioCell = wall && wall.audio ? wall.audio.cell : null;
  const volume = wall && wall.audio ? wall.audio.volume : 1;
  for (const tile of tiles.values()) {
    const heard = audioCell !== null && tile.spot && tile.spot.covers(audioCell);
    tile.node.dataset.audible = heard ? "true" : "false";
    const speaker = tile.label.querySelector(".speaker");
    if (speaker) speaker.textContent = heard ? "Audio" : "";
    if (tile.media instanceof HTMLVideoElement) {
      tile.media.volume = Math.max(0, Math.min(1, volume));
      tile.media.muted = !heard;
      if (heard && tile.media.paused) {
        const video = tile.media;
        video.play().catch(() => {
          // The browser wants a gesture before sound: play muted and ask for a click.
          video.muted = true;
          if (!soundBlocked) { soundBlocked = true; toast("Click anywhere to turn the sound on"); }
        });
      }
    }
  }
}
addEventListener("click", () => { if (soundBlocked) { soundBlocked = false; applyAudio(); } });

function showStatus(text) {
  if (!text) { statusBanner?.remove(); statusBanner = null; return; }
  if (!statusBanner) { statusBanner = el("div", { class: "wall-status", role: "status" }); document.body.append(statusBanner); }
  statusBanner.textContent = text;
}

let help = null;
function toggleHelp() {
  if (help) { help.remove(); help = null; return; }
  help = el("div", { class: "help", role: "dialog", "aria-label": "Keyboard shortcuts" },
    el("div", { class: "card" }, el("h2", { text: "Keys" }),
      el("table", {}, el("tbody", {}, shortcuts.map(([keys, what]) => el("tr", {}, el("td", { text: keys }), el("td", { text: what })))))));
  help.addEventListener("click", toggleHelp);
  document.body.append(help);
}

async function act(kind, n) {
  const tile = n ? [...tiles.values()].find((t) => t.spot && t.spot.covers(n)) : null;
  switch (kind) {
    case "help": return toggleHelp();
    case "escape": if (help) toggleHelp(); return;
    case "fullscreen": {
      const heard = [...tiles.values()].find((t) => t.node.dataset.audible === "true");
      return toggleFullscreen(heard ? heard.node : null);
    }
    case "reload":
      if (tile) { tile.failedAt = 0; tile.stop(); update(tile.cell); }
      return;
    case "silence":
      return change(() => setAudio(null));
    case "listen": {
      if (!state.wall) return;
      const again = state.wall.audio && state.wall.audio.cell !== null && tile && tile.spot.covers(state.wall.audio.cell);
      return change(() => setAudio(again ? null : n));
    }
    case "blur":
      if (tile) return change(() => putCell(tile.spot.cell, cellBody(tile.spot.data, { blurred: !tile.spot.data.blurred })));
      return;
  }
}

/** A change to the wall's state: the server decides (a display link may not), the event redraws. */
async function change(action) {
  try {
    const answer = await action();
    if (answer && answer.body && answer.body.version) { await state.apply({ event: "wall_changed", wall: wallName, version: answer.body.version, state: answer.body }) && render(); }
  } catch (error) {
    toast(error.status === 403 ? "This screen can only watch the wall." : error.message, "error");
  }
}

async function start() {
  who = await session();
  if (!who.signed_in) return signIn();
  await state.load();
  document.title = `${state.wall.title || state.wall.name} · StreamHub`;
  render();
  let opened = false;
  liveEvents({
    types: ["wall_changed", "stream_updated", "stream_status", "stream_deleted", "recording_state"],
    onEvent: async (event) => { if (await state.apply(event)) render(); },
    onState: (value) => { document.body.dataset.connection = value; showStatus(value === "open" ? "" : value === "closed" ? "" : "Reconnecting… (still playing)"); },
    onOpen: async () => {
      // After a reconnect, catch up on what changed meanwhile.
      if (opened) { try { await state.load(); render(); } catch { /* the next event will tell */ } }
      opened = true;
    },
    onRefused: (code) => showStatus(code === 4401 ? "This screen's link was revoked or expired. Open a new display link." : "This screen may not watch this wall."),
  });
  announcePresence(wallName, "display");
  setInterval(() => {
    for (const tile of tiles.values()) {
      tile.watch();
      // Retry failed tiles; a tile on its fallback goes back once its stream plays again (tried aside).
      if (tile.failedAt && performance.now() - tile.failedAt >= 10000) {
        if (tile.mode === "fallback") probe(tile);
        else { tile.failedAt = 0; update(tile.cell); }
      }
    }
  }, 2000);
  addEventListener("resize", () => { for (const tile of tiles.values()) if (tile.media && tile.spot) rotateFit(tile, tile.spot.data.rotation || 0); });
  wallKeys(act);
}

start().catch((error) => {
  if (error.status === 401) return signIn();
  clear(root).append(el("div", { class: "wall-empty", text: "The wall could not load: " + error.message }));
});

