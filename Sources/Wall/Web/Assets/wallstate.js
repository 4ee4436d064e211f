// What the display and the control page share: the wall's state, the streams and recordings it shows,
// how cells merge into tiles, and what each tile plays.
import { get, api } from "/assets/api.js";

export const wallName = decodeURIComponent(location.pathname.split("/")[2] || "");
export const wallPath = `/api/v1/walls/${encodeURIComponent(wallName)}`;

/** The wall and everything it shows, kept current by events. */
export class WallState {
  constructor() {
    this.wall = null;
    this.streams = new Map();
    this.recordings = new Map();
  }

  async load() {
    this.wall = await get(wallPath);
    await this.loadSources();
  }

  async loadSources() {
    const sources = await get(wallPath + "/sources");
    for (const stream of sources.streams) this.streams.set(stream.id, stream);
    for (const recording of sources.recordings) this.recordings.set(recording.id, recording);
  }

  /** Applies an event; answers true when the wall needs drawing again. */
  async apply(event) {
    switch (event.event) {
      case "wall_changed":
        if (event.wall !== wallName) return false;
        if (!event.state) { this.wall = null; return true; }  // deleted
        if (this.wall && event.version <= this.wall.version) return false;
        this.wall = event.state;
        if (this.unknownSources()) await this.loadSources().catch(() => {});
        return true;
      case "stream_created":
      case "stream_updated":
      case "stream_status":
        if (!event.stream || !this.streams.has(event.stream.id)) return false;
        this.streams.set(event.stream.id, event.stream);
        return true;
      case "stream_deleted":
        if (!event.stream) return false;
        return this.streams.delete(event.stream.id);
      case "recording_state":
        if (!event.recording || !this.recordings.has(event.recording.id)) return false;
        { const before = this.recordings.get(event.recording.id); this.recordings.set(event.recording.id, event.recording); return before.state !== event.recording.state; }
      default:
        return false;
    }
  }

  unknownSources() {
    return (this.wall?.cells || []).some((cell) =>
      (cell.stream_id && !this.streams.has(cell.stream_id)) || (cell.fallback_stream_id && !this.streams.has(cell.fallback_stream_id)) ||
      (cell.recording_id && !this.recordings.has(cell.recording_id)));
  }

  /** A running recording of a registry stream (what lets a stream tile rewind). */
  recordingOf(streamID) {
    for (const recording of this.recordings.values()) {
      if (recording.stream_id === streamID && ["recording", "stalled", "starting"].includes(recording.state)) return recording;
    }
    return null;
  }
}

export function contentKey(cell) {
  if (!cell) return null;
  if (cell.stream_id) return "s" + cell.stream_id;
  if (cell.recording_id) return "r" + cell.recording_id;
  if (cell.url) return "u" + cell.url;
  return null;
}

/**
 * Cells showing the same thing that form a rectangle play once, spanning it: from each unused cell, grow
 * right while the next cell shows the same, then down while the whole row below does.
 */
export function tilesOf(wall) {
  const { columns, rows, cells } = wall;
  const used = new Set();
  const tiles = [];
  const keyAt = (x, y) => (used.has(y * columns + x) ? null : contentKey(cells[y * columns + x]));
  for (let index = 0; index < columns * rows; index++) {
    const key = contentKey(cells[index]);
    if (!key || used.has(index)) continue;
    const x = index % columns, y = Math.floor(index / columns);
    let w = 1, h = 1;
    while (x + w < columns && keyAt(x + w, y) === key) w++;
    while (y + h < rows && Array.from({ length: w }, (_, i) => keyAt(x + i, y + h)).every((k) => k === key)) h++;
    for (let dy = 0; dy < h; dy++) for (let dx = 0; dx < w; dx++) used.add((y + dy) * columns + x + dx);
    tiles.push({ cell: index + 1, x, y, w, h, data: cells[index], covers: (n) => {
      const cx = (n - 1) % columns, cy = Math.floor((n - 1) / columns);
      return cx >= x && cx < x + w && cy >= y && cy < y + h;
    } });
  }
  return tiles;
}

function isHLS(url) {
  try { return /\.m3u8$/i.test(new URL(url, location.href).pathname); } catch { return false; }
}

/** How a page on a streaming platform is embedded (muted; the wall decides what is heard). */
export function embedURL(link) {
  let url;
  try { url = new URL(link); } catch { return null; }
  const host = url.hostname.replace(/^(www\.|m\.)/, "");
  if (host === "twitch.tv") {
    const channel = url.pathname.split("/")[1];
    if (channel) return `https://player.twitch.tv/?channel=${encodeURIComponent(channel)}&parent=${encodeURIComponent(location.hostname)}&muted=true`;
  }
  if (host === "youtube.com" || host === "youtu.be") {
    const id = host === "youtu.be" ? url.pathname.slice(1) : url.searchParams.get("v") || (url.pathname.match(/^\/(?:live|embed|shorts)\/([\w-]+)/) || [])[1];
    if (id) return `https://www.youtube.com/embed/${encodeURIComponent(id)}?autoplay=1&mute=1`;
  }
  if (url.protocol === "http:" || url.protocol === "https:") return url.href;
  return null;
}

/**
 * What a cell plays: `{kind: "video"|"frame", url, behind}`, or null. A rewound cell plays its recording's
 * live window delayed by `rewind_seconds` (a recording cell, or a stream cell whose stream is being recorded).
 */
export function playable(state, cell, streamID = cell.stream_id) {
  const rewind = cell.rewind_seconds || 0;
  if (cell.recording_id && streamID === cell.stream_id) {
    return { kind: "video", url: `/recordings/${cell.recording_id}/live.m3u8` + (rewind ? `?behind=${rewind}` : ""), behind: rewind, recording: cell.recording_id };
  }
  if (streamID) {
    const stream = state.streams.get(streamID);
    if (!stream) return null;
    const recording = rewind && streamID === cell.stream_id ? state.recordingOf(streamID) : null;
    if (recording) return { kind: "video", url: `/recordings/${recording.id}/live.m3u8?behind=${rewind}`, behind: rewind, recording: recording.id };
    if (stream.kind !== "web" && (stream.platform === "hls" || isHLS(stream.link))) return { kind: "video", url: stream.link, behind: 0 };
    const embed = embedURL(stream.link);
    return embed ? { kind: "frame", url: embed, behind: 0 } : null;
  }
  if (cell.url) return isHLS(cell.url) ? { kind: "video", url: cell.url, behind: 0 } : { kind: "frame", url: cell.url, behind: 0 };
  return null;
}

/** The PUT body that keeps a cell as it is but for `changes`. */
export function cellBody(cell, changes = {}) {
  const body = {};
  if (cell.stream_id) body.stream_id = cell.stream_id;
  else if (cell.recording_id) body.recording_id = cell.recording_id;
  else if (cell.url) body.url = cell.url;
  if (cell.fallback_stream_id) body.fallback_stream_id = cell.fallback_stream_id;
  if (cell.rewind_seconds) body.rewind_seconds = cell.rewind_seconds;
  body.blurred = !!cell.blurred;
  body.rotation = cell.rotation || 0;
  return Object.assign(body, changes);
}

export function putCell(number, body) {
  return api("PUT", `${wallPath}/cells/${number}`, body);
}

export function setAudio(cell, volume) {
  return api("PUT", `${wallPath}/audio`, volume === undefined ? { cell } : { cell, volume });
}

/** Streamwall's keys, shared by the display and the control page. */
export const shortcuts = [
  ["Alt+1…9", "Listen to tile 1–9 (again: silence)"],
  ["Alt+Shift+1…9", "Blur or unblur tile 1–9"],
  ["Ctrl+Alt+1…9", "Reload tile 1–9 (this screen only)"],
  ["Alt+0", "Silence the wall"],
  ["F", "Full screen the tile you hear (again: back)"],
  ["?", "Show or hide these keys"],
  ["Esc", "Close this help"],
];

/** Handles the wall keys; `act(kind, n)` does the action (`listen`, `blur`, `reload`, `silence`). */
export function wallKeys(act) {
  addEventListener("keydown", (event) => {
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
    const digit = /^Digit([0-9])$/.exec(event.code);
    if (event.altKey && digit) {
      const n = Number(digit[1]);
      event.preventDefault();
      if (n === 0) act("silence", null);
      else if (event.ctrlKey) act("reload", n);
      else if (event.shiftKey) act("blur", n);
      else act("listen", n);
      return;
    }
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    if (event.key === "?") { event.preventDefault(); act("help", null); }
    else if (event.key === "Escape") act("escape", null);
    else if (event.key === "f" || event.key === "F") act("fullscreen", null);
  });
}
