// Plays an HLS URL in a <video>: natively where the browser can (Safari, Chromium 14x+ on many platforms,
// the Chromium of these machines), else through a small MediaSource player for MPEG-TS segments (live and
// VOD media playlists; a master playlist plays its first variant). `?player=mse` on the page forces the
// MediaSource path.

const HLS_TYPE = "application/vnd.apple.mpegurl";
const TS_TYPE = 'video/mp2t; codecs="avc1.42E01E,mp4a.40.2"';
const forced = new URLSearchParams(location.search).get("player");

export function canPlayNatively(video) {
  return forced !== "mse" && video.canPlayType(HLS_TYPE) !== "";
}

export function canPlayWithMSE() {
  return typeof MediaSource !== "undefined" && MediaSource.isTypeSupported(TS_TYPE);
}

/** Starts playing `url` in `video`; answers an object with `stop()`. */
export function play(video, url) {
  if (canPlayNatively(video) || !canPlayWithMSE()) {
    video.src = url;
    video.play().catch(() => {});
    return { kind: "native", stop() { video.removeAttribute("src"); video.load(); } };
  }
  return new MsePlayer(video, url);
}

/** Just enough of a playlist: segments with their sequence numbers, target duration, end, variants. */
export function parsePlaylist(text, base) {
  const lines = text.split(/\r?\n/);
  if (lines[0].trim() !== "#EXTM3U") throw new Error("not an HLS playlist");
  const result = { segments: [], variants: [], target: 6, ended: false, sequence: 0 };
  let sequence = 0, pendingVariant = false;
  for (const raw of lines) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith("#EXT-X-TARGETDURATION:")) result.target = Number(line.split(":")[1]) || 6;
    else if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) { sequence = Number(line.split(":")[1]) || 0; result.sequence = sequence; }
    else if (line === "#EXT-X-ENDLIST") result.ended = true;
    else if (line.startsWith("#EXT-X-STREAM-INF")) pendingVariant = true;
    else if (!line.startsWith("#")) {
      const absolute = new URL(line, base).href;
      if (pendingVariant) { result.variants.push(absolute); pendingVariant = false; }
      else result.segments.push({ sequence: sequence++, url: absolute });
    }
  }
  return result;
}

class MsePlayer {
  constructor(video, url) {
    this.kind = "mse";
    this.video = video;
    this.url = new URL(url, location.href).href;
    this.next = null;       // the next media sequence to append
    this.stopped = false;
    this.source = new MediaSource();
    video.src = URL.createObjectURL(this.source);
    this.source.addEventListener("sourceopen", () => this.run().catch((error) => this.fail(error)), { once: true });
  }

  stop() {
    this.stopped = true;
    this.video.removeAttribute("src");
    this.video.load();
  }

  fail(error) {
    if (this.stopped) return;
    this.video.dispatchEvent(new CustomEvent("playerfailed", { detail: String(error && error.message || error) }));
  }

  async fetchText(url) {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(`playlist answered ${response.status}`);
    return response.text();
  }

  async run() {
    const buffer = this.source.addSourceBuffer(TS_TYPE);
    buffer.mode = "sequence";  // one timeline across discontinuities and source restarts
    let url = this.url;
    let failures = 0;
    while (!this.stopped) {
      let playlist;
      try {
        playlist = parsePlaylist(await this.fetchText(url), url);
        failures = 0;
      } catch (error) {
        if (++failures >= 4) throw error;
        await wait(2000);
        continue;
      }
      if (playlist.variants.length) { url = playlist.variants[0]; continue; }
      if (this.next === null) {
        // Live: start three segments from the end; VOD: from the start.
        this.next = playlist.ended ? playlist.sequence : Math.max(playlist.sequence, playlist.sequence + playlist.segments.length - 3);
      }
      for (const segment of playlist.segments) {
        if (this.stopped || segment.sequence < this.next) continue;
        const response = await fetch(segment.url, { credentials: "same-origin" });
        if (!response.ok) throw new Error(`segment answered ${response.status}`);
        await append(buffer, await response.arrayBuffer());
        this.next = segment.sequence + 1;
        // Segments keep their own timestamps: start (or resume after a gap) where the buffer is.
        const ranges = buffer.buffered;
        if (ranges.length && (this.video.currentTime < ranges.start(0) || this.video.currentTime > ranges.end(ranges.length - 1))) {
          this.video.currentTime = ranges.start(ranges.length - 1);
        }
        trim(buffer, this.video);
      }
      if (this.video.paused && this.video.readyState >= 2) this.video.play().catch(() => {});
      if (playlist.ended) { if (this.source.readyState === "open") this.source.endOfStream(); return; }
      await wait(Math.max(500, playlist.target * 500));
    }
  }
}

function wait(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

function append(buffer, data) {
  return new Promise((resolve, reject) => {
    buffer.addEventListener("updateend", resolve, { once: true });
    buffer.addEventListener("error", () => reject(new Error("the browser could not decode a segment")), { once: true });
    buffer.appendBuffer(data);
  });
}

/** Keeps at most 60 s behind the playhead in the buffer. */
function trim(buffer, video) {
  if (buffer.updating || !buffer.buffered.length) return;
  const start = buffer.buffered.start(0);
  if (video.currentTime - start > 60) buffer.remove(start, video.currentTime - 30);
}
