"""Self-contained HTML pages: one file with its data, styles, scripts and figures inlined.

One idea: the pieces every HTML report of the project shares. A page built here requests nothing from any
network (no ``<link>``, no ``src=`` URL): the plotting library (plotly.js, the vendored gl3d bundle in
``quaton_fab/assets``), the page's own script, its data (one ``<script type="application/json">`` block that
:func:`read_page_data` reads back) and its images (``data:`` URIs) are all inside the file.
"""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from quaton_fab.errors import QuatonFabError

__all__ = [
    "PAGE_DATA_ID", "PageError", "esc", "script_json", "asset_text", "plotly_js", "image_data_uri",
    "html_document", "read_page_data", "num",
]

#: id of the JSON block holding a page's data.
PAGE_DATA_ID = "page-data"
#: The vendored plotly.js bundle (see quaton_fab/assets/README.md).
PLOTLY_ASSET = "plotly-gl3d.min.js"

_DATA_RE = re.compile(
    r'<script type="application/json" id="' + PAGE_DATA_ID + r'">(.*?)</script>', re.DOTALL
)


class PageError(QuatonFabError):
    """A page that cannot be built or read back (missing asset, no data block, bad JSON)."""


def esc(value: object) -> str:
    """HTML-escaped text of ``value`` (quotes included, so it is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def script_json(obj: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and the JS line separators escaped."""
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def asset_text(name: str) -> str:
    """Text of a packaged asset (``quaton_fab/assets/<name>``)."""
    try:
        return resources.files("quaton_fab").joinpath("assets", name).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise PageError(f"packaged asset {name!r} is missing ({exc}); reinstall quaton-fab") from None


def plotly_js() -> str:
    """The vendored plotly.js bundle, checked to be safe inside an inline ``<script>``."""
    text = asset_text(PLOTLY_ASSET)
    if "</script" in text.lower():
        raise PageError(f"{PLOTLY_ASSET} contains '</script' and cannot be inlined")
    return text


def image_data_uri(path: str | Path) -> str | None:
    """A PNG/JPEG/SVG file as a ``data:`` URI (None when the file does not exist)."""
    p = Path(path)
    if not p.is_file():
        return None
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}.get(
        p.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(p.read_bytes()).decode("ascii")


def num(value: float | int | None, digits: int = 4, *, key: str | None = None, scale: float = 1.0,
        unit: str = "") -> str:
    """A number as HTML text, ``digits`` decimals of ``value · scale``, with ``unit``.

    With ``key`` (a path into the JSON the number comes from, e.g. ``geometry.pitch_m``) the element carries
    ``data-key``, ``data-value`` (the exact value), ``data-scale`` and ``data-digits``, so a test can compare what
    the page shows with the source file. None shows an em dash.
    """
    if value is None:
        return "—"
    text = f"{value * scale:.{digits}f}" + (f" {unit}" if unit else "")
    if key is None:
        return esc(text)
    return (f'<span class="num" data-key="{esc(key)}" data-value="{esc(repr(value))}" data-scale="{scale!r}" '
            f'data-digits="{digits}">{esc(text)}</span>')


_CSS = """
:root{--fg:#1d2430;--mut:#5b6473;--bd:#d7dbe2;--bg:#f6f7f9;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
margin:0;background:#fff}header{background:#1d2430;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header .sub{color:#c9d1d9;font-size:13px}nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--bd);
padding:6px 24px;z-index:5;font-size:13px}nav a{margin-right:14px;color:#0b57d0;text-decoration:none}
main{padding:8px 24px 40px;max-width:1400px}section{margin:22px 0}h2{font-size:17px;border-bottom:1px solid var(--bd);
padding-bottom:4px}h3{font-size:15px;margin:14px 0 6px}table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid var(--bd);padding:3px 8px;text-align:left;vertical-align:top}th{background:var(--bg)}
td.r,th.r{text-align:right}code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.muted{color:var(--mut)}.ok{color:var(--ok);font-weight:600}.warn{color:var(--warn);font-weight:600}
.bad{color:var(--bad);font-weight:600}.verdict{border:2px solid var(--bd);border-radius:6px;padding:10px 14px;
background:var(--bg)}.verdict.ok{border-color:var(--ok)}.verdict.warn{border-color:var(--warn)}
.verdict.bad{border-color:var(--bad)}.grid{display:flex;flex-wrap:wrap;gap:18px}.card{border:1px solid var(--bd);
border-radius:6px;padding:10px;background:#fff}.figure{width:520px;height:420px}.figure.wide{width:900px;height:520px}
canvas.levelmap{width:400px;height:400px;image-rendering:pixelated;border:1px solid var(--bd);cursor:crosshair}
.swatch{display:inline-block;width:14px;height:14px;border:1px solid #0003;vertical-align:middle}
.spotlist{max-height:220px;overflow:auto;border:1px solid var(--bd);padding:4px 8px;margin:4px 0}
.spot{cursor:pointer;color:#0b57d0;text-decoration:underline dotted}.spot.active{background:#fff3b0}
.notrun{border-left:4px solid var(--warn);padding:6px 10px;background:#fffbea}pre{white-space:pre-wrap;margin:4px 0}
.controls{font-size:13px;margin:4px 0}img.fig{max-width:900px;border:1px solid var(--bd)}
"""


def html_document(title: str, body: str, data: Any, scripts: list[str]) -> str:
    """A complete page: ``body`` HTML, ``data`` as the JSON block, then each script inline, in order."""
    for s in scripts:
        if "</script" in s.lower():
            raise PageError("an inline script contains '</script'")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may be fetched: no network source of any kind is allowed to this page.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline' "
        "'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; worker-src blob:\">",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        body,
        f'<script type="application/json" id="{PAGE_DATA_ID}">{script_json(data)}</script>',
    ]
    parts += [f"<script>{s}</script>" for s in scripts]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def read_page_data(text: str) -> dict[str, Any]:
    """The JSON data block of a page made by :func:`html_document`."""
    match = _DATA_RE.search(text)
    if match is None:
        raise PageError("the page holds no data block")
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError as exc:
        raise PageError(f"the page's data block is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise PageError("the page's data block is not a JSON object")
    return data
