"""The pages in a real browser: headless Chromium (through chromedriver and selenium) against the real binary,
with HLS made by ffmpeg on loopback. Each test checks what a person would see or hear, by content."""
import json
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ROOT, cli, http, wait_until
from test_recorder import LiveSource, Origin

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("chromedriver") is None
    or not (shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")),
    reason="ffmpeg, chromium and chromedriver are needed")

PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(os.environ.get("STREAMHUB_ARTIFACTS", ROOT / ".build" / "test-artifacts")) / "screenshots"
HOSTILE = "<img src=x onerror=\"window.__xss=1\">"


class Hub:
    """A server with an admin and two editors, and their login tokens."""

    def __init__(self, start_server, data_dir):
        self.data = os.path.join(data_dir, "hub")
        for email, role in [("admin@example.org", "admin"), ("editor@example.org", "editor"), ("second@example.org", "editor")]:
            made = cli(self.data, "user", "create", "--email", email, "--role", role, "--password-stdin", stdin=PASSWORD)
            assert made.returncode == 0, made.stderr
        self.server = start_server(data=self.data)
        self.admin = self.login("admin@example.org")
        self.editor = self.login("editor@example.org")
        self.second = self.login("second@example.org")

    def login(self, email):
        status, _, body = http("POST", self.server.url("/api/v1/users/login"), json.dumps({"email": email, "password": PASSWORD}).encode(),
                               {"Content-Type": "application/json"})
        assert status == 200, body
        return json.loads(body)["token"]

    def call(self, method, path, payload=None, token=None):
        status, headers, body = http(method, self.server.url(path), json.dumps(payload).encode() if payload is not None else None,
                                     {"Authorization": f"Bearer {token or self.editor}", "Content-Type": "application/json"})
        return status, (json.loads(body) if body and body[:1] in (b"{", b"[") else body)

    def ok(self, method, path, payload=None, token=None):
        status, body = self.call(method, path, payload, token)
        assert status in (200, 201, 202, 204), f"{method} {path} → {status} {body}"
        return body

    def recording_of(self, url):
        recording = self.ok("POST", "/api/v1/recordings", {"url": url})
        wait_until(lambda: self.ok("GET", f"/api/v1/recordings/{recording['id']}")["segments"] >= 3, 30, "three recorded segments")
        return recording["id"]


@pytest.fixture
def hub(start_server, data_dir):
    return Hub(start_server, data_dir)


@pytest.fixture
def sources(data_dir):
    made = []

    def make():
        source = LiveSource(tempfile.mkdtemp(dir=data_dir))
        made.append(source)
        return source

    yield make
    for source in made:
        source.stop()
        source.origin.stop()


@contextmanager
def browser(width=1600, height=900):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                     "--autoplay-policy=no-user-gesture-required", "--mute-audio"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver, hub, path, token):
    """Opens a page with `?token=` the way a link does; the server moves it into the cookie."""
    separator = "&" if "?" in path else "?"
    driver.get(hub.server.url(f"{path}{separator}token={token}"))
    assert "token=" not in driver.current_url, "the token left the address bar"


def tiles(driver):
    return driver.execute_script("""
        return [...document.querySelectorAll('.tile')].map(t => {
          const v = t.querySelector('video');
          return {cell: t.dataset.cell, state: t.dataset.state, audible: t.dataset.audible, blurred: t.dataset.blurred,
                  stream: t.dataset.streamId || null, recording: t.dataset.recordingId || null,
                  src: v ? (v.currentSrc || v.src) : null, time: v ? v.currentTime : null, muted: v ? v.muted : null,
                  behind: (t.querySelector('.behind:not(.hidden)') || {}).textContent || null,
                  overlay: t.querySelector('.overlay').textContent};
        });""")


def tile(driver, cell):
    return next((t for t in tiles(driver) if t["cell"] == str(cell)), None)


def wait_for(driver, condition, timeout, what):
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        # A live page redraws as events arrive: an element read between two redraws is looked up again.
        WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d), what)
    except TimeoutException:
        detail = {"url": driver.current_url, "tiles": tiles(driver) if "/wall/" in driver.current_url else None,
                  "console": [entry["message"][:300] for entry in driver.get_log("browser")][-10:]}
        raise AssertionError(f"{what} did not happen within {timeout}s: {json.dumps(detail, indent=1)}") from None


def frame_is_not_blank(driver, cell):
    """Draws the tile's current frame to a canvas: a real picture has many distinct colours."""
    return driver.execute_script("""
        const v = document.querySelector(`.tile[data-cell="${arguments[0]}"] video`);
        if (!v || v.videoWidth === 0) return 0;
        const c = document.createElement('canvas'); c.width = 64; c.height = 36;
        const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 36);
        const d = g.getImageData(0, 0, 64, 36).data; const colours = new Set();
        for (let i = 0; i < d.length; i += 4) colours.add((d[i] >> 4) + ',' + (d[i+1] >> 4) + ',' + (d[i+2] >> 4));
        return colours.size;""", cell) > 8


def row_text(driver, stream_id):
    """A stream row's text, read in one step (live updates replace rows; a found element can go stale)."""
    return driver.execute_script(
        "return (document.querySelector(`tr[data-stream-id=\"${arguments[0]}\"]`) || {}).innerText || ''", str(stream_id))


def preview_is_red(driver, x, y):
    """Whether the control page's preview image is red at (x, y) in program pixels."""
    rgb = preview_rgb(driver, x, y)
    return rgb is not None and rgb[0] > 150 and rgb[1] < 90 and rgb[2] < 90


def preview_rgb(driver, x, y):
    """The control page's preview pixel at (x, y) in program pixels, or None before the first frame."""
    return driver.execute_script("""
        const image = document.getElementById('preview');
        if (!image || !image.naturalWidth) return null;
        const canvas = document.createElement('canvas');
        canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(image, 0, 0);
        return [...context.getImageData(arguments[0], arguments[1], 1, 1).data];""", x, y)


def solid_png(path, width, height, rgb):
    """Writes a solid-colour RGB PNG (zlib from the standard library)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                  + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def click(driver, css):
    """Clicks the element `css` names, looking it up again if a live redraw replaced it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"{css} kept being redrawn")


def severe_logs(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_a_display_plays_a_recording_and_follows_two_control_pages_within_a_second(hub, sources):
    source = sources()
    recording = hub.recording_of(source.url())
    stream = hub.ok("POST", "/api/v1/streams", {"link": source.url(), "source": "Harbor cam", "city": "Portland"})
    hub.ok("POST", "/api/v1/walls", {"name": "desk", "columns": 3, "rows": 3})
    hub.ok("PUT", "/api/v1/walls/desk/cells/1", {"recording_id": recording})
    display_token = hub.ok("POST", "/api/v1/walls/desk/displays", {"label": "TV"})["token"]

    with browser() as native, browser() as mse, browser(1400, 900) as control_a, browser(1400, 900) as control_b:
        open_page(native, hub, "/wall/desk", display_token)
        open_page(mse, hub, "/wall/desk?player=mse", hub.editor)
        for driver in (native, mse):
            wait_for(driver, lambda d: (tile(d, 1) or {}).get("state") == "playing", 30, "the recorded tile to play")
            start = tile(driver, 1)["time"]
            wait_for(driver, lambda d: tile(d, 1)["time"] > start + 1, 20, "currentTime to advance")
            assert tile(driver, 1)["recording"] == recording
            assert frame_is_not_blank(driver, 1)
        assert mse.execute_script("return document.querySelector('.tile video').src.startsWith('blob:')"), "the MediaSource player played it"
        assert native.execute_script("return document.querySelector('.tile video').src.includes('/live.m3u8')")

        # A control page assigns a stream to cell 2: both displays show it within a second of the key press.
        open_page(control_a, hub, "/wall/desk/control", hub.editor)
        open_page(control_b, hub, "/wall/desk/control", hub.second)
        for driver in (control_a, control_b):
            wait_for(driver, lambda d: d.execute_script("return document.body.dataset.live") == "true", 20, "the control page to go live")
        for driver in (native, mse):
            driver.execute_script("""
                window.__seen = null;
                new MutationObserver(() => {
                  if (!window.__seen && document.querySelector('.tile[data-cell="2"][data-stream-id]')) window.__seen = Date.now();
                }).observe(document.getElementById('wall'), {subtree: true, childList: true, attributes: true});""")
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        field = control_a.find_element(By.CSS_SELECTOR, '.cell[data-cell="2"] input.assign')
        field.send_keys(str(stream["id"]))
        pressed = control_a.execute_script("return Date.now()")
        field.send_keys(Keys.ENTER)
        for driver in (native, mse):
            wait_for(driver, lambda d: d.execute_script("return window.__seen"), 5, "cell 2 on the display")
            latency = driver.execute_script("return window.__seen") - pressed
            assert latency < 1000, f"the display showed the change after {latency} ms"
            assert tile(driver, 2)["stream"] == str(stream["id"])
        # The second control page saw it too, and presence lists both operators and the displays.
        wait_for(control_b, lambda d: "Harbor cam" in d.find_element(By.CSS_SELECTOR, '.cell[data-cell="2"]').text, 5, "the other control page")
        wait_for(control_a, lambda d: {"editor@example.org", "second@example.org"} <= set(
            d.execute_script("return [...document.querySelectorAll('#presence .who')].map(e => e.textContent)")), 15, "presence")

        # Two operators change different cells at the same moment: both changes stay.
        a = control_a.find_element(By.CSS_SELECTOR, '.cell[data-cell="4"] input.assign')
        b = control_b.find_element(By.CSS_SELECTOR, '.cell[data-cell="6"] input.assign')
        a.send_keys(source.url())
        b.send_keys(recording)
        a.send_keys(Keys.ENTER)
        b.send_keys(Keys.ENTER)
        wait_until(lambda: (lambda cells: cells[3]["stream_id"] == stream["id"] and cells[5]["recording_id"] == recording)(
            hub.ok("GET", "/api/v1/walls/desk")["cells"]), 10, "both operators' cells in the wall")
        for driver in (control_a, control_b):
            wait_for(driver, lambda d: "Recording" in d.find_element(By.CSS_SELECTOR, '.cell[data-cell="6"]').text
                     and "Harbor cam" in d.find_element(By.CSS_SELECTOR, '.cell[data-cell="4"]').text, 5, "both changes on both pages")

        # Audio focus follows alt+2 (exactly one unmuted video); alt+shift+2 blurs tile 2.
        body = mse.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.ALT, "2")
        wait_for(mse, lambda d: [t["cell"] for t in tiles(d) if t["audible"] == "true"] == ["2"], 5, "tile 2 to be heard")
        wait_for(mse, lambda d: [t["cell"] for t in tiles(d) if t["muted"] is False] == ["2"], 5, "one unmuted video")
        wait_for(native, lambda d: [t["cell"] for t in tiles(d) if t["audible"] == "true"] == ["2"], 5, "the other display follows")
        body.send_keys(Keys.ALT, Keys.SHIFT, "2")
        wait_for(mse, lambda d: tile(d, 2)["blurred"] == "true", 5, "tile 2 blurred")
        wait_for(native, lambda d: tile(d, 2)["blurred"] == "true", 5, "blurred on the other display")
        # A display link may watch, not change: the key asks, the server refuses.
        native.find_element(By.TAG_NAME, "body").send_keys(Keys.ALT, "1")
        wait_for(native, lambda d: "only watch" in (d.execute_script("return (document.querySelector('.toast')||{}).textContent") or ""), 5, "the refusal")
        assert hub.ok("GET", "/api/v1/walls/desk")["audio"]["cell"] == 2
        screenshot(native, "wall-display")
        screenshot(control_a, "wall-control")


def test_a_tile_shows_its_fallback_while_its_stream_is_down_and_comes_back(hub, sources):
    main, spare = sources(), sources()
    primary = hub.ok("POST", "/api/v1/streams", {"link": main.url(), "source": "Main"})
    fallback = hub.ok("POST", "/api/v1/streams", {"link": spare.url(), "source": "Spare"})
    hub.ok("POST", "/api/v1/walls", {"name": "fb", "columns": 2, "rows": 1})
    hub.ok("PUT", "/api/v1/walls/fb/cells/1", {"stream_id": primary["id"], "fallback_stream_id": fallback["id"]})
    with browser(1280, 720) as driver:
        open_page(driver, hub, "/wall/fb", hub.editor)
        wait_for(driver, lambda d: (tile(d, 1) or {}).get("state") == "playing", 30, "the main stream to play")
        assert tile(driver, 1)["stream"] == str(primary["id"])
        main.stop()  # ffmpeg ends the playlist: the stream is over
        wait_for(driver, lambda d: tile(d, 1)["state"] == "fallback" and tile(d, 1)["stream"] == str(fallback["id"]), 45, "the fallback")
        assert spare.url() in tile(driver, 1)["src"]
        screenshot(driver, "wall-fallback")
        main.start()
        wait_for(driver, lambda d: tile(d, 1)["state"] == "playing" and tile(d, 1)["stream"] == str(primary["id"]), 60, "the main stream again")
        assert main.url() in tile(driver, 1)["src"]
        # The registry says it is offline: the fallback at once, without waiting for the player.
        hub.ok("PATCH", f"/api/v1/streams/{primary['id']}", {"status": "offline"})
        wait_for(driver, lambda d: tile(d, 1)["state"] in ("fallback", "loading") and tile(d, 1)["stream"] == str(fallback["id"]), 10, "the fallback on status")


def make_past_vod(directory, seconds=160, segment=4):
    """HLS made by ffmpeg faster than real time, stamped as if it had been recorded over the last `seconds`."""
    os.makedirs(directory, exist_ok=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac",
                    "-f", "hls", "-hls_time", str(segment), "-hls_playlist_type", "vod", os.path.join(directory, "vod.m3u8")], check=True, timeout=120)
    lines = Path(directory, "vod.m3u8").read_text().splitlines()
    start = time.time() - seconds - 10
    out, at = [], start
    for line in lines:
        if line.startswith("#EXTINF:"):
            out.append("#EXT-X-PROGRAM-DATE-TIME:" + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z")
            at += float(line.split(":")[1].rstrip(","))
        out.append(line)
    Path(directory, "vod.m3u8").write_text("\n".join(out) + "\n")


def test_rewind_plays_from_two_minutes_ago_and_goes_back_to_live(hub, data_dir):
    media = os.path.join(data_dir, "past")
    make_past_vod(media)
    origin = Origin(media)
    try:
        recording = hub.ok("POST", "/api/v1/recordings", {"url": origin.url("vod.m3u8")})["id"]
        wait_until(lambda: hub.ok("GET", f"/api/v1/recordings/{recording}")["state"] == "stopped", 60, "the VOD to be recorded whole")
        hub.ok("POST", "/api/v1/walls", {"name": "rw", "columns": 2, "rows": 2})
        hub.ok("PUT", "/api/v1/walls/rw/cells/1", {"recording_id": recording})
        with browser(1280, 720) as display, browser(1280, 900) as control:
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support.ui import Select
            open_page(display, hub, "/wall/rw", hub.editor)
            wait_for(display, lambda d: (tile(d, 1) or {}).get("state") == "playing", 30, "live playback")
            live_src = tile(display, 1)["src"]
            assert "behind=" not in live_src and tile(display, 1)["behind"] is None
            open_page(control, hub, "/wall/rw/control", hub.editor)
            wait_for(control, lambda d: d.find_elements(By.CSS_SELECTOR, '.cell[data-cell="1"] select'), 10, "the rewind control")
            Select(control.find_element(By.CSS_SELECTOR, '.cell[data-cell="1"] select')).select_by_value("120")
            wait_for(display, lambda d: "behind=120" in (tile(d, 1)["src"] or ""), 10, "the rewound source")
            wait_for(display, lambda d: tile(d, 1)["state"] == "playing" and (tile(d, 1)["time"] or 0) > 1, 30, "rewound playback")
            assert tile(display, 1)["behind"] == "behind live by 2:00"
            # The rewound window is two minutes older than the live one.
            status, _, body = http("GET", hub.server.url(f"/recordings/{recording}/live.m3u8?behind=120"))
            rewound_first = [line for line in body.decode().splitlines() if line.startswith("segments/")][0]
            status, _, body = http("GET", hub.server.url(f"/recordings/{recording}/live.m3u8"))
            live_first = [line for line in body.decode().splitlines() if line.startswith("segments/")][0]
            assert rewound_first < live_first, (rewound_first, live_first)
            screenshot(display, "wall-rewind")
            control.find_element(By.XPATH, '//div[@data-cell="1"]//button[text()="Back to live"]').click()
            wait_for(display, lambda d: tile(d, 1)["src"] and "behind=" not in tile(d, 1)["src"] and tile(d, 1)["behind"] is None, 10, "live again")
            assert hub.ok("GET", "/api/v1/walls/rw")["cells"][0]["rewind_seconds"] is None
    finally:
        origin.stop()


def test_invites_and_display_links_are_held_to_their_rights_by_the_server(hub):
    stream = hub.ok("POST", "/api/v1/streams", {"link": "https://example.org/a.m3u8", "source": "A"})
    hub.ok("POST", "/api/v1/walls", {"name": "inv", "columns": 2, "rows": 2})
    viewer = hub.ok("POST", "/api/v1/walls/inv/invites", {"role": "viewer", "expires_in": 3600, "max_uses": 1})
    display = hub.ok("POST", "/api/v1/walls/inv/displays")
    from selenium.webdriver.common.by import By
    with browser(1280, 800) as driver:
        open_page(driver, hub, "/wall/inv/control", viewer["token"])
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.canOperate") == "false", 10, "the read-only control page")
        assert "View only" in driver.find_element(By.TAG_NAME, "body").text
        assert driver.find_elements(By.CSS_SELECTOR, "input.assign") == []
        # Even a crafted request from the page is refused by the server.
        answer = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch('/api/v1/walls/inv/cells/1', {method: 'PUT', credentials: 'same-origin',
              headers: {'Content-Type': 'application/json', 'X-StreamHub-Page': '1'}, body: JSON.stringify({stream_id: arguments[0]})})
              .then(r => done(r.status));""", stream["id"])
        assert answer == 403
        assert hub.ok("GET", "/api/v1/walls/inv")["cells"][0]["stream_id"] is None
        # Its one use is spent; a revoked display link is refused; a display link cannot open the control page.
    with browser(1280, 800) as driver:
        driver.get(hub.server.url(f"/wall/inv/control?token={viewer['token']}"))
        assert "used as many times" in driver.find_element(By.TAG_NAME, "body").text
        open_page(driver, hub, "/wall/inv", display["token"])
        driver.get(hub.server.url("/wall/inv/control"))
        assert "cannot open the control page" in driver.find_element(By.TAG_NAME, "body").text
        driver.get(hub.server.url("/wall/inv"))
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.connection") == "open", 10, "the display online")
        hub.ok("DELETE", f"/api/v1/walls/inv/links/{display['id']}")
        wait_for(driver, lambda d: "revoked" in d.find_element(By.TAG_NAME, "body").text, 5, "the display told it was revoked")
        driver.get(hub.server.url("/wall/inv"))
        assert driver.current_url.startswith(hub.server.url("/?next="))


def test_the_admin_page_edits_under_a_lock_rotates_a_key_and_runs_a_recording(hub, sources):
    from selenium.webdriver.common.by import By
    source = sources()
    with browser(1500, 900) as first, browser(1500, 900) as second:
        open_page(first, hub, "/admin", hub.editor)
        open_page(second, hub, "/admin", hub.second)
        for driver in (first, second):
            wait_for(driver, lambda d: d.execute_script("return document.body.dataset.live") == "true", 15, "live admin page")
        # Create.
        form = first.find_element(By.CSS_SELECTOR, "#panel-streams form")
        form.find_element(By.NAME, "link").send_keys("https://www.twitch.tv/admin_made")
        form.find_element(By.NAME, "source").send_keys("Made in admin")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for(first, lambda d: "Made in admin" in d.find_element(By.ID, "streams-table").text, 10, "the new stream listed")
        stream = hub.ok("GET", "/api/v1/streams?search=admin_made")["streams"][0]
        second.refresh()
        wait_for(second, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-stream-id="{stream["id"]}"]'), 10, "the stream on the second page")
        wait_for(second, lambda d: d.execute_script("return document.body.dataset.live") == "true", 15, "live again")
        # Edit: the lock shows on the other editor's page; the save goes through with If-Match.
        first.find_element(By.XPATH, f'//tr[@data-stream-id="{stream["id"]}"]//button[text()="Edit"]').click()
        wait_for(second, lambda d: "editor@example.org is editing" in row_text(d, stream["id"]), 10, "the lock shown")
        status, body = hub.call("PATCH", f"/api/v1/streams/{stream['id']}", {"title": "sneaky"}, token=hub.second)
        assert status == 423, body
        editing = f'tr[data-stream-id="{stream["id"]}"] input[name=title]'
        wait_for(first, lambda d: d.find_elements(By.CSS_SELECTOR, editing), 10, "the edit form")
        title = first.find_element(By.CSS_SELECTOR, editing)
        title.clear()
        title.send_keys("Edited under lock")
        first.find_element(By.XPATH, f'//tr[@data-stream-id="{stream["id"]}"]//button[text()="Save"]').click()
        wait_for(second, lambda d: "Edited under lock" in row_text(d, stream["id"]), 10, "the edit live")
        wait_for(second, lambda d: "is editing" not in row_text(d, stream["id"]), 10, "the lock gone")
        # Archive.
        first.find_element(By.XPATH, f'//tr[@data-stream-id="{stream["id"]}"]//button[text()="Archive"]').click()
        wait_until(lambda: hub.ok("GET", f"/api/v1/streams/{stream['id']}")["is_archived"], 10, "archived")
        wait_for(second, lambda d: "archived" in row_text(d, stream["id"]).lower(), 10, "archived shown")
        screenshot(first, "admin-streams")

        # Overlays: create a community, then rotate its key; the page shows each new key once.
        first.find_element(By.XPATH, '//div[@class="tabs"]/button[text()="Overlays"]').click()
        wait_for(first, lambda d: d.find_elements(By.CSS_SELECTOR, "#panel-overlays form"), 10, "the overlays tab")
        first.find_element(By.CSS_SELECTOR, "#panel-overlays form input[name=name]").send_keys("Stage")
        first.find_element(By.CSS_SELECTOR, "#panel-overlays form button[type=submit]").click()
        wait_for(first, lambda d: d.find_elements(By.ID, "overlay-url"), 10, "the overlay URL")
        url = "return (document.getElementById('overlay-url') || {}).value"
        before = first.execute_script(url)
        first.find_element(By.XPATH, '//tr[@data-community]//button[text()="Rotate key"]').click()
        first.switch_to.alert.accept()
        wait_for(first, lambda d: d.execute_script(url) not in (None, before), 10, "the rotated key")
        screenshot(first, "admin-overlays")

        # Recordings: start one from the page, see it record, stop it.
        first.find_element(By.XPATH, '//div[@class="tabs"]/button[text()="Recordings"]').click()
        wait_for(first, lambda d: d.find_elements(By.CSS_SELECTOR, "#panel-recordings form"), 10, "the recordings tab")
        first.find_element(By.CSS_SELECTOR, "#panel-recordings input[name=source]").send_keys(source.url())
        first.find_element(By.CSS_SELECTOR, "#panel-recordings button[type=submit]").click()
        wait_for(first, lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-recording-id][data-state="recording"]'), 30, "recording")
        first.find_element(By.XPATH, '//tr[@data-state="recording"]//button[text()="Stop"]').click()
        wait_for(first, lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-recording-id][data-state="stopped"]'), 20, "stopped")
        screenshot(first, "admin-recordings")
        assert severe_logs(first) == []


def test_pages_escape_user_text_send_a_policy_and_log_no_errors(hub, sources):
    source = sources()
    stream = hub.ok("POST", "/api/v1/streams", {"link": source.url(), "source": HOSTILE, "title": HOSTILE, "city": HOSTILE})
    hub.ok("POST", "/api/v1/walls", {"name": "safe", "columns": 2, "rows": 2, "title": HOSTILE})
    hub.ok("PUT", "/api/v1/walls/safe/cells/1", {"stream_id": stream["id"]})
    recording = hub.recording_of(source.url())
    hub.ok("PUT", "/api/v1/walls/safe/cells/2", {"recording_id": recording})
    for path in ["/", "/admin", "/wall/safe", "/wall/safe/control"]:
        status, headers, _ = http("GET", hub.server.url(path), headers={"Cookie": "streamhub_session=" + hub.editor})
        assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"], path
    for name, (width, height) in {"desktop": (1440, 900), "phone": (390, 844)}.items():
        with browser(width, height) as driver:
            open_page(driver, hub, "/", hub.admin)
            for path, page in [("/", "home"), ("/admin", "admin"), ("/wall/safe/control", "control"), ("/wall/safe", "display")]:
                driver.get(hub.server.url(path))
                wait_for(driver, lambda d: d.execute_script("return document.getElementById('app') ? !document.getElementById('app').hasAttribute('aria-busy') : true"),
                         10, f"{page} to load")
                if page == "display":
                    wait_for(driver, lambda d: (tile(d, 2) or {}).get("state") == "playing", 30, "the display to play")
                else:
                    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.live === 'true' || document.getElementById('conn')?.dataset.state === 'open'"),
                             10, f"{page} live")
                assert driver.execute_script("return window.__xss") is None, page
                assert driver.find_elements("css selector", "img[src='x']") == [], page
                if page in ("control", "display") or (page == "admin" and name == "desktop"):
                    assert HOSTILE in driver.find_element("tag name", "body").text or page == "display", page
                screenshot(driver, f"{page}-{name}")
            driver.get(hub.server.url("/?next=/admin"))
            assert severe_logs(driver) == [], severe_logs(driver)
    with browser(1440, 900) as driver:
        driver.get(hub.server.url("/"))
        wait_for(driver, lambda d: d.find_elements("css selector", "form input[type=email]"), 10, "the sign-in form")
        screenshot(driver, "signin-desktop")
        driver.find_element("css selector", "input[type=email]").send_keys("admin@example.org")
        driver.find_element("css selector", "input[type=password]").send_keys(PASSWORD)
        driver.find_element("css selector", "button[type=submit]").click()
        wait_for(driver, lambda d: d.find_elements("id", "walls"), 10, "the home page after signing in")
        assert severe_logs(driver) == []


def test_a_display_keeps_playing_through_a_server_restart_and_reconnects(hub, sources, start_server):
    source = sources()
    stream = hub.ok("POST", "/api/v1/streams", {"link": source.url(), "source": "Outside"})
    hub.ok("POST", "/api/v1/walls", {"name": "tv", "columns": 2, "rows": 2})
    hub.ok("PUT", "/api/v1/walls/tv/cells/1", {"stream_id": stream["id"]})
    token = hub.ok("POST", "/api/v1/walls/tv/displays")["token"]
    with browser(1280, 720) as driver:
        open_page(driver, hub, "/wall/tv", token)
        wait_for(driver, lambda d: (tile(d, 1) or {}).get("state") == "playing", 30, "playing")
        started = (tile(driver, 1) or {}).get("time") or 0
        wait_for(driver, lambda d: ((tile(d, 1) or {}).get("time") or 0) > started + 3.5, 15, "three seconds played")
        # A glitch of the source (the browser gives up on a video that played) restarts the player a second
        # later, without the "Can't play" pause of a failed tile (which retries after 10 s).
        driver.execute_script("""
            window.__states = [];
            const node = document.querySelector('.tile[data-cell="1"]');
            new MutationObserver(() => window.__states.push(node.dataset.state)).observe(node, {attributes: true, attributeFilter: ['data-state']});
            node.querySelector('video').dispatchEvent(new Event('error'));""")
        wait_for(driver, lambda d: (tile(d, 1) or {}).get("state") == "playing" and ((tile(d, 1) or {}).get("time") or 0) > 0, 8,
                 "playing again after the glitch")
        assert "failed" not in driver.execute_script("return window.__states"), driver.execute_script("return window.__states")
        port = hub.server.port
        hub.server.stop()
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.connection") != "open", 10, "the display to notice")
        # The tile plays on: its video's time moves on by 2 s (summed over the samples, so that a player restarted
        # by a glitch of the source, whose clock starts again, still counts what it plays).
        progress = {"last": None, "played": 0.0}

        def plays_on(d):
            now = (tile(d, 1) or {}).get("time") or 0
            if progress["last"] is not None and now > progress["last"]:
                progress["played"] += now - progress["last"]
            progress["last"] = now
            return progress["played"] > 2
        wait_for(driver, plays_on, 15, "playing on while the server is down")
        hub.server = start_server(data=hub.data, extra_env={"STREAMHUB_PORT": str(port)})
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.connection") == "open", 40, "the display to reconnect")
        hub.editor = hub.login("editor@example.org")
        hub.ok("PUT", "/api/v1/walls/tv/cells/4", {"stream_id": stream["id"]})
        wait_for(driver, lambda d: tile(d, 4) is not None, 5, "a change after the restart")


def test_the_program_control_page_previews_toggles_drags_and_pauses_live(hub):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    hub.ok("POST", "/api/v1/programs", {"name": "desk", "width": 640, "height": 360, "fps": 15, "preset": "ultrafast", "video_bitrate": 600})
    lower = hub.ok("POST", "/api/v1/programs/desk/layers", {"kind": "text", "text": "Storm over Omaha", "x": 40, "y": 280, "width": 400,
                                                             "height": 50, "style": {"background": "#cc0000"}})
    badge = hub.ok("POST", "/api/v1/programs/desk/layers", {"kind": "text", "text": HOSTILE, "x": 500, "y": 20, "width": 120, "height": 60,
                                                             "visible": False})
    hub.ok("POST", "/api/v1/walls", {"name": "studio", "title": "Studio wall", "columns": 2, "rows": 1})
    hub.ok("POST", "/api/v1/programs/desk/start")
    hub.ok("POST", "/api/v1/users", {"email": "watcher@example.org", "password": PASSWORD, "role": "viewer"}, token=hub.admin)
    watcher_token = hub.login("watcher@example.org")
    layer = lambda lid: next(l for l in hub.ok("GET", "/api/v1/programs/desk")["layers"] if l["id"] == lid)  # noqa: E731

    with browser(1400, 900) as page, browser(1400, 900) as watcher:
        open_page(page, hub, "/programs/desk/control", hub.editor)
        open_page(watcher, hub, "/programs/desk/control", watcher_token)
        for driver in (page, watcher):
            wait_for(driver, lambda d: d.execute_script("return document.body.dataset.live") == "true", 20, "the control page to go live")
            wait_for(driver, lambda d: int(d.execute_script("return document.body.dataset.previewFrames || 0")) >= 3, 30, "preview frames")
        assert page.execute_script("return document.getElementById('preview').naturalWidth") == 640
        wait_for(page, lambda d: "/ 15" in d.find_element(By.CSS_SELECTOR, '[data-stat="fps"]').text, 20, "the measured fps")
        # User text is shown as text, never run.
        assert HOSTILE in page.find_element(By.ID, "layer-list").text
        assert page.execute_script("return window.__xss") is None

        # Toggling a layer shows it in the program, and the other page follows through the layers channel.
        click(page, f'.layer-item[data-layer-id="{badge["id"]}"] input.visible')
        wait_until(lambda: layer(badge["id"])["visible"], 10, "the badge visible in the program")
        wait_for(watcher, lambda d: d.execute_script(
            f"return document.querySelector('.layer-item[data-layer-id=\"{badge['id']}\"] input.visible').checked"), 5, "the watcher's list")

        # Dragging the lower third on the preview moves it in the program (a live change, no restart).
        click(page, f'.layer-item[data-layer-id="{lower["id"]}"] .layer-text')
        wait_for(page, lambda d: d.find_element(By.CSS_SELECTOR, f'.layer-box[data-layer-id="{lower["id"]}"]').get_attribute("data-selected") == "true", 5,
                 "the lower third picked")
        box = page.find_element(By.CSS_SELECTOR, f'.layer-box[data-layer-id="{lower["id"]}"]')
        stage_width = page.execute_script("return document.getElementById('stage').clientWidth")
        ActionChains(page).click_and_hold(box).move_by_offset(40, 0).move_by_offset(40, -20).release().perform()
        expected_x = 40 + round(80 * 640 / stage_width)
        wait_until(lambda: abs(layer(lower["id"])["x"] - expected_x) <= 3, 10, f"the lower third moved to x≈{expected_x}")
        assert layer(lower["id"])["y"] < 280
        wait_for(watcher, lambda d: abs(float(d.execute_script(
            f"return parseFloat(document.querySelector('.layer-box[data-layer-id=\"{lower['id']}\"]').style.left)")) - expected_x / 6.4) < 1, 5,
            "the watcher's preview outline moved")
        assert hub.ok("GET", "/api/v1/programs/desk")["stream"]["restarts"] == 0
        # The preview shows it: the red band is drawn where the lower third went.
        moved = layer(lower["id"])
        wait_for(page, lambda d: preview_is_red(d, moved["x"] + moved["width"] - 20, moved["y"] + 5), 5, "the moved lower third in the preview")
        # At a glance: on air, what is heard, where it goes.
        assert page.find_element(By.ID, "on-air").text.lower() == "live"
        assert page.find_element(By.ID, "heard").text == "Audio: silence"
        assert page.find_element(By.ID, "pushes").text == "HLS only"
        screenshot(page, "program-control")
        page.set_window_size(390, 844)
        screenshot(page, "program-control-phone")
        page.set_window_size(1400, 900)

        # Pause and resume from the page; the state follows.
        click(page, "#do-pause")
        wait_until(lambda: hub.ok("GET", "/api/v1/programs/desk")["state"] == "paused", 10, "paused")
        wait_for(page, lambda d: d.find_element(By.ID, "do-resume").is_displayed() and not d.find_element(By.ID, "do-pause").is_displayed(), 5,
                 "the resume button")
        wait_for(watcher, lambda d: d.find_element(By.CSS_SELECTOR, '[data-stat="state"]').text.endswith("paused"), 10, "paused on the other page")
        assert watcher.find_element(By.ID, "on-air").text.lower() == "paused"
        wait_for(page, lambda d: not preview_is_red(d, moved["x"] + moved["width"] - 20, moved["y"] + 5), 5, "the paused preview without layers")
        click(page, "#do-resume")
        wait_until(lambda: hub.ok("GET", "/api/v1/programs/desk")["state"] == "running", 10, "running again")

        # An image from the editor's disk: uploaded, laid on the program top left, listed on both pages, drawn.
        logo = os.path.join(tempfile.mkdtemp(), "logo.png")
        solid_png(logo, 96, 64, (0, 220, 0))
        page.find_element(By.ID, "image-file").send_keys(logo)
        wait_until(lambda: any(l["kind"] == "image" for l in hub.ok("GET", "/api/v1/programs/desk")["layers"]), 15, "the image layer")
        image_layer = next(l for l in hub.ok("GET", "/api/v1/programs/desk")["layers"] if l["kind"] == "image")
        assert (image_layer["x"], image_layer["y"], image_layer["width"], image_layer["height"]) == (0, 0, 96, 64)
        assert hub.ok("GET", f"/api/v1/images/{image_layer['image_id']}")["name"] == "logo.png"
        wait_for(watcher, lambda d: d.find_elements(By.CSS_SELECTOR, f'.layer-item[data-layer-id="{image_layer["id"]}"]'), 10, "the image in the watcher's list")
        green = lambda d: (lambda rgb: rgb is not None and rgb[1] > 150 and rgb[0] < 90 and rgb[2] < 90)(preview_rgb(d, 48, 32))  # noqa: E731
        wait_for(page, green, 30, "the image drawn in the preview")

        # The wall picker: a wall shown under everything, over the whole canvas; "No wall" hides it again.
        from selenium.webdriver.support.ui import Select
        wall_layer = lambda: next((l for l in hub.ok("GET", "/api/v1/programs/desk")["layers"] if l["kind"] == "wall"), None)  # noqa: E731
        wait_for(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#wall-picker option")) >= 2, 10, "the walls in the picker")
        Select(page.find_element(By.ID, "wall-picker")).select_by_value("studio")
        wait_until(lambda: (w := wall_layer()) is not None and w["wall"] == "studio" and w["visible"], 10, "the wall layer")
        shown = wall_layer()
        assert (shown["x"], shown["y"], shown["width"], shown["height"]) == (0, 0, 640, 360)
        assert shown["z"] < min(l["z"] for l in hub.ok("GET", "/api/v1/programs/desk")["layers"] if l["kind"] != "wall")
        wait_for(watcher, lambda d: d.find_element(By.ID, "wall-picker").get_attribute("value") == "studio", 10, "the watcher's picker")
        Select(page.find_element(By.ID, "wall-picker")).select_by_value("")
        wait_until(lambda: not wall_layer()["visible"], 10, "the wall hidden")

        # A viewer watches but cannot change: no buttons, no toggles, and the server refuses a crafted call.
        assert watcher.execute_script("return document.body.dataset.canEdit") == "false"
        assert watcher.find_elements(By.ID, "do-stop") == []
        assert watcher.execute_script("return [...document.querySelectorAll('input.visible')].every(i => i.disabled)")
        answer = watcher.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch('/api/v1/programs/desk/stop', {method: 'POST', credentials: 'same-origin', headers: {'X-StreamHub-Page': '1'}})
              .then(r => done(r.status));""")
        assert answer == 403
        assert [e for e in severe_logs(page) if "favicon" not in e["message"]] == []

    # A wall link opens no program page; an unknown program is a clear 404.
    hub.ok("POST", "/api/v1/walls", {"name": "lobby", "columns": 1, "rows": 1})
    display = hub.ok("POST", "/api/v1/walls/lobby/displays")
    with browser(1280, 800) as driver:
        open_page(driver, hub, "/wall/lobby", display["token"])
        driver.get(hub.server.url("/programs/desk/control"))
        assert "opens the wall lobby only" in driver.find_element(By.TAG_NAME, "body").text
        open_page(driver, hub, "/programs/nope/control", hub.editor)
        assert "There is no program named nope" in driver.find_element(By.TAG_NAME, "body").text
    hub.ok("POST", "/api/v1/programs/desk/stop")
