// The front door: sign in, then the walls, live streams, recordings and overlays at a glance.
import { api, get, session, el, clear, topbar, toast, attempt, atLeast, statusBadge, streamName, streamWhere, liveEvents, setConnection } from "/assets/api.js";

const app = document.getElementById("app");

/** Where to go after signing in: a path on this server only. */
function nextPath() {
  const next = new URLSearchParams(location.search).get("next");
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

function signInForm(setup) {
  const error = el("p", { class: "error", role: "alert" });
  const email = el("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = el("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const form = el("form", { class: "form", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const login = (await api("POST", "/api/v1/users/login", { email: email.value, password: password.value })).body;
      await api("POST", "/session", { token: login.token });
      location.href = nextPath();
    } catch (failure) {
      error.textContent = failure.status === 401 ? "That email and password do not match an account." : failure.message;
      password.select();
    }
  } },
    el("label", {}, "Email", email),
    el("label", {}, "Password", password),
    error,
    el("button", { class: "primary", type: "submit", text: "Sign in" }));
  return el("main", { class: "narrow" },
    el("h1", { class: "brand", text: "StreamHub" }),
    el("p", { class: "muted", text: "Live streams, walls, recordings and overlays for the people who watch over many at once." }),
    setup ? el("div", { class: "notice", id: "setup" }, el("strong", { text: "First run. " }), setup) : null,
    el("section", { class: "card" }, el("h2", { text: "Sign in" }), form),
    el("p", { class: "muted", text: "Opened a wall invite or display link? It signs you in by itself." }));
}

function section(title, count, body, action) {
  return el("section", { class: "card" },
    el("div", { class: "row" }, el("h3", { text: title }), action || null),
    count === null ? null : el("div", { class: "stat", text: count }),
    body);
}

async function home(who) {
  if (who.scope) {  // a wall link opens its wall
    location.href = `/wall/${encodeURIComponent(who.scope.wall)}${who.scope.access === "display" ? "" : "/control"}`;
    return;
  }
  const [walls, live, recordings] = await Promise.all([
    get("/api/v1/walls"),
    get("/api/v1/streams?status=live&per_page=8&sort=-is_pinned,-last_live_at"),
    get("/api/v1/recordings?state=recording,stalled,starting&per_page=6"),
  ]);
  let communities = null;
  if (atLeast(who, "editor")) communities = await get("/api/v1/communities").catch(() => null);

  const wallList = el("ul", { class: "stack", id: "walls" }, walls.walls.map((wall) => el("li", { dataset: { wall: wall.name } },
    el("div", { class: "row" },
      el("strong", { text: wall.title || wall.name }),
      el("span", { class: "muted", text: `${wall.columns}×${wall.rows} · ${wall.cells.filter((c) => c.stream_id || c.recording_id || c.url).length} tiles` })),
    el("div", { class: "row" },
      el("a", { class: "button", href: `/wall/${encodeURIComponent(wall.name)}`, text: "Display" }),
      el("a", { class: "button", href: `/wall/${encodeURIComponent(wall.name)}/control`, text: "Control" })))));
  if (!walls.walls.length) wallList.append(el("li", { class: "muted", text: "No walls yet." }));

  let create = null;
  if (atLeast(who, "editor")) {
    const name = el("input", { name: "wall", placeholder: "newsroom", pattern: "[a-z0-9][a-z0-9-]{0,39}", required: true, "aria-label": "New wall name" });
    create = el("form", { class: "row", onsubmit: async (event) => {
      event.preventDefault();
      const created = await attempt(() => api("POST", "/api/v1/walls", { name: name.value.trim().toLowerCase() }));
      if (created) location.href = `/wall/${encodeURIComponent(created.body.name)}/control`;
    } }, name, el("button", { type: "submit", text: "New wall" }));
  }

  const liveList = el("ul", { class: "stack", id: "live" }, live.streams.map((stream) => el("li", {},
    el("div", { class: "row" }, statusBadge(stream.status), el("strong", { text: streamName(stream) })),
    el("div", { class: "muted", text: [stream.title, streamWhere(stream)].filter(Boolean).join(" · ") }))));
  if (!live.streams.length) liveList.append(el("li", { class: "muted", text: "Nothing live right now." }));

  const recordingList = el("ul", { class: "stack" }, recordings.recordings.map((recording) => el("li", {},
    el("div", { class: "row" }, el("span", { class: "badge", dataset: { status: recording.state === "recording" ? "live" : "unknown" }, text: recording.state }),
      el("span", { class: "mono", text: recording.id.slice(0, 8) }),
      el("span", { class: "muted", text: `${recording.segments} segments` })))));
  if (!recordings.recordings.length) recordingList.append(el("li", { class: "muted", text: "No recording is running." }));

  const cards = [
    section("Walls", walls.walls.length, el("div", { class: "stack" }, wallList, create)),
    section("Live streams", live.meta.total_count, liveList, el("a", { href: "/admin#streams", text: "All streams" })),
    section("Recordings running", recordings.meta.total_count, recordingList, el("a", { href: "/admin#recordings", text: "Recordings" })),
  ];
  if (communities) {
    cards.push(section("Overlays", communities.communities.length, el("ul", { class: "stack" }, communities.communities.map((community) =>
      el("li", { text: community.name }))), el("a", { href: "/admin#overlays", text: "Overlays" })));
  }
  const state = document.getElementById("conn")?.dataset.state;
  clear(app).append(topbar(who, "/"), el("main", {}, el("h1", { text: "At a glance" }), el("div", { class: "grid-cards" }, cards)));
  if (state) setConnection(state);
}

let refreshTimer = null;
function scheduleRefresh(who) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => home(who).catch((error) => toast(error.message, "error")), 1000);
}

(async () => {
  const who = await session();
  app.removeAttribute("aria-busy");
  if (!who.signed_in) {
    clear(app).append(signInForm(who.setup));
    return;
  }
  await home(who);
  if (!who.scope) {
    liveEvents({ types: ["stream_status", "stream_created", "stream_deleted", "wall_changed"], onEvent: () => scheduleRefresh(who), onState: setConnection });
  }
})().catch((error) => { app.textContent = "StreamHub could not load: " + error.message; });
