"""Overlays through the real binary: the overlay commands, and a real headless Chromium that loads an
overlay page and shows a caption posted after it loaded."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import BINARY, SERVICE_KEY, cli, http




def test_overlay_commands(start_server, data_dir):
    data = os.path.join(data_dir, "overlays")
    created = cli(data, "overlay", "create", "newsroom")
    assert created.returncode == 0, created.stderr
    key = re.search(r"overlay key ([0-9a-f]{64})", created.stdout).group(1)
    assert cli(data, "overlay", "create", "newsroom").returncode == 1, "a second create refuses (rotate instead)"
    shown = cli(data, "overlay", "show", "newsroom")
    assert key[:8] in shown.stdout and key not in shown.stdout
    rotated = cli(data, "overlay", "rotate", "newsroom")
    new_key = re.search(r"new overlay key ([0-9a-f]{64})", rotated.stdout).group(1)
    assert new_key != key
    assert cli(data, "overlay", "show", "nope").returncode == 1

    server = start_server(data=data)
    assert http("GET", server.url(f"/overlay/{new_key}"))[0] == 200
    assert http("GET", server.url(f"/overlay/{key}"))[0] == 200, "the previous key works during the grace period"


def chromium_binary():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(chromium_binary() is None or shutil.which("chromedriver") is None, reason="chromium and chromedriver are not installed")
def test_headless_chromium_shows_a_caption_posted_after_the_page_loaded(start_server, data_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    data = os.path.join(data_dir, "chromium")
    created = cli(data, "overlay", "create", "stage")
    key = re.search(r"overlay key ([0-9a-f]{64})", created.stdout).group(1)
    community = int(re.search(r"community (\d+)", created.stdout).group(1))
    server = start_server(data=data)

    options = Options()
    options.binary_location = chromium_binary()
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1920,1080"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(server.url(f"/overlay/{key}"))
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-connected") == "true")
        text = "Caption from the newsroom <b>not bold</b> & co"
        status, _, body = http("POST", server.url("/api/v1/internal/captions"),
                               json.dumps({"community_id": community, "text": text, "is_final": True}).encode(),
                               {"X-Service-Key": SERVICE_KEY, "Content-Type": "application/json"})
        assert status == 202, body
        wait.until(lambda d: text in d.find_element(By.ID, "captions").text)
        # Shown as text, not markup.
        assert driver.find_elements(By.CSS_SELECTOR, "#captions b") == []
        # The page ran under its Content-Security-Policy without violations.
        errors = [entry for entry in driver.get_log("browser") if "Content Security Policy" in entry.get("message", "")]
        assert errors == [], errors
    finally:
        driver.quit()
