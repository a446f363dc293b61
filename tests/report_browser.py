"""Open a report page in headless Chromium with the network blocked (shared by the browser tests and the
README screenshot: ``python tests/report_browser.py OUT.png`` exports the sample design and photographs its page).

Chromium is Debian's ``chromium`` package (``/usr/bin/chromium``), driven by Playwright's Python package with
``executable_path`` (no browser download). Every request that is not a ``file:`` or ``data:``/``blob:`` URL is
aborted and recorded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

CHROMIUM = os.environ.get("QUATON_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Console noise of software WebGL that is not an error of the page.
_BENIGN = ("GPU stall due to ReadPixels", "willReadFrequently", "Automatic fallback to software WebGL")


def browser_missing() -> str | None:
    """Why no browser test can run here (None when Chromium and Playwright are both available)."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed (pip install -e '.[test]')"
    return None


@dataclass
class PageLog:
    """What the page did: console messages (type, text), page errors, blocked and failed requests."""

    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        bad = [f"console {t}: {x}" for t, x in self.console if t == "error"]
        bad += [f"warning: {x}" for t, x in self.console if t == "warning" and not any(b in x for b in _BENIGN)]
        return bad + [f"page error: {e}" for e in self.errors] + [f"blocked request: {u}" for u in self.blocked] + [
            f"failed request: {u}" for u in self.failed]


@contextlib.contextmanager
def open_page(path: Path, width: int = 1400, height: int = 1000, timeout_s: float = 45.0) -> Iterator[tuple]:
    """Yield (page, log) for ``path`` loaded in a fresh headless Chromium profile, once ``body[data-ready]``."""
    from playwright.sync_api import sync_playwright

    log = PageLog()
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": width, "height": height}, service_workers="block")
        try:
            def route(r):
                url = r.request.url
                if url.startswith(("file:", "data:", "blob:")):
                    r.continue_()
                else:
                    log.blocked.append(url)
                    r.abort()

            ctx.route("**/*", route)
            page = ctx.new_page()
            page.on("console", lambda m: log.console.append((m.type, m.text)))
            page.on("pageerror", lambda e: log.errors.append(str(e)))
            page.on("requestfailed", lambda r: log.failed.append(r.url))
            page.goto(Path(path).resolve().as_uri())
            page.wait_for_function("document.body.dataset.ready === '1' || !!document.body.dataset.error",
                                   timeout=timeout_s * 1000)
            err = page.evaluate("document.body.dataset.error || null")
            if err:
                log.errors.append(err)
            yield page, log
        finally:
            ctx.close()


def _screenshot(out: Path) -> None:
    """Export the sample design into a temporary folder and photograph the top of its report."""
    from quaton_fab.design import Design
    from quaton_fab.fab.export import ExportOptions, export_design

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        export_design(Design.load(root / "sample_designs" / "mnist-psq-lt-4"), Path(tmp) / "export", ExportOptions())
        with open_page(Path(tmp) / "export" / "report.html", width=1280, height=1000) as (page, log):
            page.evaluate("""() => { const s = document.querySelector("input.exag[data-target='relief3d']");
                s.value = 4; s.dispatchEvent(new Event('input'));
                document.getElementById('masks').scrollIntoView({block: 'start'}); }""")
            page.wait_for_timeout(500)
            page.screenshot(path=str(out), full_page=False)
            if log.problems():
                raise SystemExit("; ".join(log.problems()))


if __name__ == "__main__":
    _screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "report.png"))
