"""The report page in a real browser: opens offline from disk, every image decodes, no console errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
def test_index_html_renders_in_chromium(target_report: tuple[Path, Path], tmp_path: Path) -> None:
    # CI sets LSTM_BENCH_REQUIRE_BROWSER so that a missing browser fails there instead of skipping
    missing = pytest.fail if os.environ.get("LSTM_BENCH_REQUIRE_BROWSER") else pytest.skip
    if not CHROMIUM.is_file():
        missing(f"{CHROMIUM} missing: apt-get install chromium")
    try:
        from playwright import sync_api
    except ImportError:
        missing("pip install playwright (its browser download is not needed)")
    _, index = target_report
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(index.as_uri(), wait_until="load")
            widths = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
            shot = page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
            # the answer first: the whole Recommendation block within a 1400 x 1000 viewport, unscrolled
            first = browser.new_page(viewport={"width": 1400, "height": 1000})
            first.goto(index.as_uri(), wait_until="load")
            box = first.evaluate("(() => { const r = document.getElementById('recommendation')"
                                 ".getBoundingClientRect(); return [r.top, r.bottom]; })()")  # fmt: skip
            first.screenshot(path=str(tmp_path / "first_screen.png"))
        finally:
            browser.close()
    assert len(widths) == 6 and all(w > 0 for w in widths), widths
    assert errors == []
    assert 0 <= box[0] < box[1] <= 1000, box
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # nothing fetched from outside
    import matplotlib.image

    pixels = matplotlib.image.imread(tmp_path / "report.png")
    assert len(shot) > 10_000 and float(np.std(pixels[..., :3])) > 0.05  # not a blank page
