"""The web page end to end, in a real headless browser (Debian's chromium, driven by Playwright).

``.ci/run`` installs chromium; where it is missing this test is reported as skipped, with the command
that installs it. ``MORPH_UI_SCREENSHOT=PATH`` also saves the page's screenshot there (the README's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from morphing.cli.ui import free_port
from morphing.testing.scenes import toy_scene
from morphing.ui import serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium as root, headless, with nothing that reaches outside this machine.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class NoFaces:
    def detect(self, image: np.ndarray) -> list:
        return []


@pytest.fixture()
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium: the page's browser test needs it (apt install chromium; .ci/run does)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements-dev)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def test_upload_fit_and_click_a_point_pair(browser, tmp_path: Path) -> None:
    scene = toy_scene(120, 160)
    for name, alpha in (("a.png", 0.0), ("b.png", 1.0)):
        iio.imwrite(tmp_path / name, scene.render(alpha))
    server = serve("127.0.0.1", free_port("127.0.0.1"), detector=NoFaces(), block=False)
    outside: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    try:
        page.goto(server.local_url, wait_until="load")
        page.wait_for_selector("#fit", timeout=60_000)
        page.set_input_files("#source input[type=file]", str(tmp_path / "a.png"))
        page.wait_for_function("document.querySelector('#loaded').innerText.includes('source 160×120')",
                               timeout=60_000)
        page.set_input_files("#target input[type=file]", str(tmp_path / "b.png"))
        page.wait_for_function("document.querySelector('#loaded').innerText.includes('no face in both')",
                               timeout=60_000)

        page.click("#fit")
        page.wait_for_selector("#animation img", timeout=120_000)  # the fitted morph's animation appears

        source_image = page.locator("#source img")
        before = source_image.get_attribute("src")
        box = source_image.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
        # The source is drawn again with the waiting point on it before the target is clicked.
        page.wait_for_function(f"document.querySelector('#source img').getAttribute('src') !== {before!r}",
                               timeout=30_000)
        target_box = page.locator("#target img").bounding_box()
        page.mouse.click(target_box["x"] + target_box["width"] * 0.6, target_box["y"] + target_box["height"] * 0.5)
        page.wait_for_function("document.querySelector('#pairs').innerText.includes('clicked')", timeout=30_000)
        cells = page.locator("#pairs").inner_text()
        assert "clicked" in cells and "48" in cells  # pair 1: x source = 0.3 of 160 px
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        second = browser.new_page()  # a second tab is a session of its own
        second.goto(server.local_url, wait_until="load")
        second.wait_for_selector("#fit", timeout=60_000)
        assert "clicked" not in second.locator("#pairs").inner_text()
        assert second.locator("#loaded").inner_text().strip() == ""
        if os.environ.get("MORPH_UI_SCREENSHOT"):
            shutil.copyfile(tmp_path / "page.png", os.environ["MORPH_UI_SCREENSHOT"])
        assert outside == []  # nothing fetched from outside this machine
    finally:
        server.close()
        server.morph_folders.remove_all()
