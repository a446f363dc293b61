"""Both HTML reports in a real browser (headless Chromium, network blocked): no console errors, no requests, every
figure drawn, the 3D canvases non-uniform, a printability click highlights its spot, and the numbers shown equal
fab_sheet.json's. Skipped, with the reason, only where Chromium or Playwright is missing."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from report_browser import browser_missing, open_page

ROOT = Path(__file__).parent.parent
SAMPLE = ROOT / "sample_designs" / "mnist-psq-lt-4"

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=f"no browser: {browser_missing()}")


def _image(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int32)


def _not_blank(png: bytes, min_colours: int = 20) -> bool:
    """At least ``min_colours`` colours and real contrast (a blank or single-colour element fails)."""
    img = _image(png)
    colours = np.unique(img.reshape(-1, 3), axis=0).shape[0]
    return colours >= min_colours and float(img.std()) > 10.0


def _resolve(sheet: dict, key: str):
    value = sheet
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


_MAP_PIXELS = """(id) => { const c = document.getElementById(id);
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""


def test_design_report_in_chromium(tmp_path):
    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["export", str(SAMPLE), "--format", "all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    sheet = json.loads((out / "fab_sheet.json").read_text())
    with open_page(out / "report.html") as (page, log):
        assert log.problems() == [], log.problems()
        # every figure is there and drawn: the relief viewer and the stack (3D, WebGL), 5 level maps (canvas)
        figures = page.locator(".figure")
        assert figures.count() == 2
        for i in range(figures.count()):
            fig = figures.nth(i)
            assert fig.locator("canvas").count() >= 1, fig.get_attribute("id")
            fig.scroll_into_view_if_needed()
            assert _not_blank(fig.screenshot()), fig.get_attribute("id")
        maps = page.locator("canvas.levelmap")
        assert maps.count() == 5
        for i in range(5):
            assert _not_blank(maps.nth(i).screenshot(), min_colours=4)
        # the 3D relief viewer follows the chosen mask and is drawn again
        relief = page.locator("#relief3d")
        first = relief.screenshot()
        page.select_option("#relief-mask", "3")
        page.wait_for_function("document.getElementById('relief3d').dataset.mask === '3'")
        page.wait_for_timeout(300)
        third = relief.screenshot()
        assert _not_blank(third) and not np.array_equal(_image(first), _image(third))
        # numbers: every keyed number equals the sheet (exact value; the shown digits round it)
        shown = page.evaluate("""() => [...document.querySelectorAll('[data-key]')].map(e =>
            [e.dataset.key, e.dataset.value || null, e.dataset.scale || null, e.dataset.digits || null,
             e.dataset.text || null, e.innerText])""")
        assert len(shown) >= 80
        for key, value, scale, digits, text, inner in shown:
            expected = _resolve(sheet, key)
            if text is not None:
                assert text == expected == inner, key
                continue
            assert float(value) == float(expected), key
            number = float(re.match(r"-?[\d.]+", inner).group(0))
            assert abs(number - float(expected) * float(scale)) <= 0.5 * 10 ** -int(digits) + 1e-12, key
        assert page.locator("[data-notrun]").count() == 3
        # a printability warning click: the map scrolls into view and is marked around the spot only
        spot = page.locator(".spot[data-mask='3']").nth(7)
        mask, row, col = (int(spot.get_attribute(k)) for k in ("data-mask", "data-row", "data-col"))
        before = np.array(page.evaluate(_MAP_PIXELS, f"map-{mask}"))
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        spot.click()
        assert page.locator(f"#map-{mask}").get_attribute("data-highlight") == f"{row},{col}"
        assert "active" in spot.get_attribute("class")
        box = page.evaluate(f"(() => {{ const r = document.getElementById('map-{mask}').getBoundingClientRect();"
                            "return [r.top, r.bottom, window.innerHeight]; })()")
        assert 0 <= box[0] and box[1] <= box[2], box
        after = np.array(page.evaluate(_MAP_PIXELS, f"map-{mask}"))
        size = int(np.sqrt(after.size // 4))
        changed = np.argwhere((before != after).reshape(size, size, 4).any(axis=2))
        assert changed.size
        neurons = json.loads((SAMPLE / "design.json").read_text())["geometry"]["neurons"]
        scale = size / neurons
        distance = np.hypot(changed[:, 0] / scale - (row + 0.5), changed[:, 1] / scale - (col + 0.5))
        assert distance.max() < 5.0, (distance.max(), row, col)  # the mark is around this spot, nowhere else
        assert distance.min() > 1.0  # a ring: the spot itself stays visible
        # vertical exaggeration: the 3D scene's z aspect follows the control
        z1 = page.evaluate("document.getElementById('relief3d').layout.scene.aspectratio.z")
        page.evaluate("""() => { const s = document.querySelector("input.exag[data-target='relief3d']");
            s.value = 5; s.dispatchEvent(new Event('input')); }""")
        z5 = page.evaluate("document.getElementById('relief3d').layout.scene.aspectratio.z")
        assert z5 == pytest.approx(5 * z1)
        assert log.problems() == [], log.problems()


def test_study_page_in_chromium(tmp_path):
    """The study page of the QuATON study results (docs/RESULTS.json): figures with error bars and the ranking."""
    from quaton_fab.sweep.report import FIDELITY_NAMES, FIDELITY_ORDER
    from quaton_fab.sweep.report_html import render_sweep_page

    twin = json.loads((ROOT / "docs" / "RESULTS.json").read_text())
    for label, g in twin["grids"].items():
        for r in g["rows"]:
            r["cells"] = [f"{label}/{r['params'].get('method')}-{r['params'].get('levels')}-s{s}" for s in r["seeds"]]
    ranks = {k: [(r["method"], r["mean_rank"], r["wins"]) for r in v] for k, v in twin["ranking"].items()}
    page_path = tmp_path / "report.html"
    page_path.write_text(render_sweep_page(
        {"name": twin["name"], "cells": [0] * twin["cells"], "spec_text": twin["spec_text"]}, twin, ranks, tmp_path,
        page_path, fid_names=FIDELITY_NAMES, fid_order=FIDELITY_ORDER), encoding="utf-8")
    with open_page(page_path) as (page, log):
        assert log.problems() == [], log.problems()
        figures = page.locator(".figure")
        assert figures.count() >= 4
        for i in range(figures.count()):
            fig = figures.nth(i)
            fig.scroll_into_view_if_needed()
            assert _not_blank(fig.screenshot()), fig.get_attribute("id")
        # error bars are drawn (one per point of a method with several seeds)
        assert page.locator("#levels-0 g.errorbar").count() > 0
        assert page.locator("#grid-0 table.ranking tbody tr").count() == len(ranks[next(iter(twin["grids"]))])
