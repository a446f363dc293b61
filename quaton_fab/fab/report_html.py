"""The design report: one self-contained ``report.html`` per export, the page a facility opens first.

One idea: render an export's fab sheet and its level maps as one HTML page that opens offline (every script,
figure and datum inlined; see :mod:`quaton_fab.html_page`). It shows the part at a glance, each mask's level map
(scale bar, level legend, printability spots) and its relief in 3D, the stack in 3D, the level table, volume
and print time, printability warnings (a click shows the spot), verification, the rigorous cross-check and the
tolerances (or the command that adds them), every file with its SHA-256 and the commands that made them.

The page lists every file of the export except itself (its own SHA-256 is in ``fab_sheet.json``). Its data block
holds the level maps (zlib-compressed level indices, row-major), so the page can be rebuilt from itself when the
sheet gains a section (:func:`refresh_report`, called by every fab sheet write) and ``verify`` reads the maps
back like any other file (:func:`read_report_levels`).

3D views are downsampled for speed: a mask of N×N pixels is drawn in blocks of b×b pixels with
b = ceil(N / ``VIEW3D_MAX_BLOCKS``) (b = 1, every pixel, up to 64×64); each block stands at the tallest printed
level inside it, so no isolated pillar disappears from the view. The 2-D level maps always show every pixel.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import shlex
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from quaton_fab.fileio import atomic_write_bytes
from quaton_fab.printing.printability import diagonal_contact_windows, isolated_pixels
from quaton_fab.tasks.metrics import HEADLINE_ORDER, metric_spec, metric_title
from quaton_fab.html_page import (
    PageError,
    asset_text,
    esc,
    html_document,
    image_data_uri,
    num,
    plotly_js,
    read_page_data,
)

__all__ = [
    "REPORT_NAME", "REPORT_SCHEMA", "VIEW3D_MAX_BLOCKS", "ASPECT_WARN", "SPOT_MAX", "ReportError",
    "render_design_report", "write_design_report", "refresh_report", "read_report", "read_report_levels", "block_size",
    "aspect_ratios", "not_run",
]

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
REPORT_SCHEMA = "quaton-fab/design-report"
#: Largest number of blocks per side in a 3D view (see the module docstring for the rule).
VIEW3D_MAX_BLOCKS = 64
#: Wall height / feature width at or above which a pixel is flagged as a tall, thin feature. A rule of thumb for
#: free-standing two-photon-printed polymer features (not a measured limit of any resin): calibrate with a print.
ASPECT_WARN = 2.0
#: Spots stored per mask and warning kind (row-major order); counts always cover every spot.
SPOT_MAX = 2000
#: Spots listed (clickable) per mask and warning kind; all stored spots can be shown on the map.
SPOT_LIST = 40


class ReportError(PageError):
    """A design report that cannot be built or read back."""


def block_size(neurons: int, max_blocks: int = VIEW3D_MAX_BLOCKS) -> int:
    """Side b (pixels) of the blocks a 3D view draws: ceil(N / max_blocks), at least 1."""
    return max(1, math.ceil(int(neurons) / int(max_blocks)))


def aspect_ratios(heights_m: np.ndarray, levels: np.ndarray, pitch_m: float) -> np.ndarray:
    """Per pixel: wall height over feature width (dimensionless, (N, N)).

    Wall height: the pixel's height minus the lowest of its 4-neighbours inside the aperture (0 where none is
    lower). Feature width: one pitch for a pixel in no 2×2 square of its level (a one-pixel-wide wall or pillar),
    else two pitches (a lower bound of its width).
    """
    h = np.asarray(heights_m, dtype=np.float64)
    lv = np.asarray(levels)
    lowest = h.copy()
    lowest[1:, :] = np.minimum(lowest[1:, :], h[:-1, :])
    lowest[:-1, :] = np.minimum(lowest[:-1, :], h[1:, :])
    lowest[:, 1:] = np.minimum(lowest[:, 1:], h[:, :-1])
    lowest[:, :-1] = np.minimum(lowest[:, :-1], h[:, 1:])
    wall = h - lowest
    same = np.zeros(lv.shape, dtype=bool)  # pixel lies in some 2×2 square of its own level
    sq = (lv[:-1, :-1] == lv[1:, :-1]) & (lv[:-1, :-1] == lv[:-1, 1:]) & (lv[:-1, :-1] == lv[1:, 1:])
    for dr in (0, 1):
        for dc in (0, 1):
            same[dr:dr + sq.shape[0], dc:dc + sq.shape[1]] |= sq
    width = np.where(same, 2.0, 1.0) * float(pitch_m)
    return wall / width


def _spots(mask: np.ndarray, count: int | None = None) -> dict[str, Any]:
    """Row, column pairs of the True pixels of ``mask`` (first ``SPOT_MAX`` in row-major order) and their count
    (``count`` when one spot stands for more than one finding)."""
    rc = np.argwhere(mask)
    return {"count": int(rc.shape[0] if count is None else count), "rc": rc[:SPOT_MAX].astype(int).ravel().tolist()}


def _corner_spots(levels: np.ndarray) -> dict[str, Any]:
    """Diagonal-only contacts: the top-left pixel of each 2×2 window holding one (a checkerboard window: two)."""
    main, anti = diagonal_contact_windows(levels)
    return _spots(main | anti, int(main.sum() + anti.sum()))


def _encode_levels(levels: np.ndarray) -> dict[str, Any]:
    """One mask's level indices: zlib-compressed bytes (uint8, or uint16 little-endian), base64."""
    lv = np.asarray(levels)
    dtype = "uint8" if int(lv.max(initial=0)) < 256 else "uint16"
    raw = np.ascontiguousarray(lv.astype("<u2" if dtype == "uint16" else np.uint8)).tobytes()
    return {"dtype": dtype, "deflate_b64": base64.b64encode(zlib.compress(raw, 9)).decode("ascii")}


def _decode_levels(entry: Mapping[str, Any], neurons: int) -> np.ndarray:
    dtype = {"uint8": np.uint8, "uint16": np.dtype("<u2")}.get(entry.get("dtype"))
    if dtype is None:
        raise ReportError(f"report.html: unknown level dtype {entry.get('dtype')!r}")
    try:
        raw = zlib.decompress(base64.b64decode(entry["deflate_b64"], validate=True))
    except (KeyError, ValueError, zlib.error) as exc:
        raise ReportError(f"report.html: a level map cannot be decoded ({exc})") from None
    arr = np.frombuffer(raw, dtype=dtype)
    if arr.size != neurons * neurons:
        raise ReportError(f"report.html: a level map holds {arr.size} pixels, not {neurons}×{neurons}")
    return arr.reshape(neurons, neurons).astype(np.int64)


def _palette(n: int) -> list[str]:
    """n distinguishable colours (viridis sampled at the level centres), hex."""
    from matplotlib import colormaps  # matplotlib is a runtime dependency; only the colour table is used

    cmap = colormaps["viridis"]
    return ["#%02x%02x%02x" % tuple(int(round(255 * c)) for c in cmap((k + 0.5) / n)[:3]) for k in range(n)]


def not_run(what: str, command: str) -> str:
    """The placeholder of a section whose command has not been run on this export."""
    return (f'<p class="notrun" data-notrun="{esc(what)}">{esc(what)}: not run yet — command: '
            f"<code>{esc(command)}</code></p>")


# ------------------------------------------------------------------------------------------------ data
def source_digest(sheet: Mapping[str, Any]) -> str:
    """SHA-256 of what a report shows of ``sheet``: the sheet without its own hash and without the report's entry."""
    plain = {k: v for k, v in sheet.items() if k != "sheet_sha256"}
    plain["files"] = [f for f in sheet.get("files", []) if not (isinstance(f, dict) and f.get("name") == REPORT_NAME)]
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def report_data(sheet: Mapping[str, Any], levels: np.ndarray, export_name: str = "EXPORT_DIR") -> dict[str, Any]:
    """The page's JSON: geometry, level table, colours, encoded level maps, printability spots, curves."""
    geo = sheet["geometry"]
    lv = np.asarray(levels)
    layers, n = int(geo["layers"]), int(geo["neurons"])
    if lv.shape != (layers, n, n):
        raise ReportError(f"level maps of shape {lv.shape} do not match the sheet's {layers} masks of {n}×{n}")
    snapped_um = np.array([r["snapped_height_um"] for r in sheet["levels"]])
    if lv.size and (lv.min() < 0 or lv.max() >= len(snapped_um)):
        raise ReportError(f"level index {int(lv.max())} is outside the sheet's {len(snapped_um)} levels")
    extra = sheet.get("extra") or {}
    pitch_m = float(geo["pitch_m"])
    masks = []
    for l in range(layers):
        ar = aspect_ratios(snapped_um[lv[l]] * 1e-6, lv[l], pitch_m)
        masks.append({
            "mask": l + 1,
            "levels": _encode_levels(lv[l]),
            "spots": {
                "isolated": _spots(isolated_pixels(lv[l])),
                "corner": _corner_spots(lv[l]),
                "aspect": _spots(ar >= ASPECT_WARN),
            },
            "max_aspect": float(ar.max(initial=0.0)),
        })
    plate_pitch_m = (extra.get("stack") or {}).get("plate_pitch_m") or geo["spacing_m"]
    relief = (extra.get("simulation") or {}).get("relief") or {}
    return {
        "schema": REPORT_SCHEMA,
        "version": 1,
        "export_name": export_name,
        "sheet_digest": source_digest(sheet),
        "neurons": n,
        "layers": layers,
        "pitch_um": pitch_m * 1e6,
        "base_um": float(sheet["base_m"]) * 1e6,
        "plate_pitch_um": float(plate_pitch_m) * 1e6,
        "orientation": relief.get("orientation", "base-first"),
        "levels": [dict(r) for r in sheet["levels"]],
        "colors": _palette(len(snapped_um)),
        "view3d": {"block": block_size(n), "max_blocks": VIEW3D_MAX_BLOCKS},
        "aspect_warn": ASPECT_WARN,
        "spot_list": SPOT_LIST,
        "spot_max": SPOT_MAX,
        "masks": masks,
        "tolerance_curves": _tolerance_curves(sheet.get("tolerance")),
    }


def _tolerance_curves(tol: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """Mean and 5th percentile vs magnitude per error kind, from the sheet's tolerance entry (if it has them)."""
    if not tol or not tol.get("curves"):
        return None
    out: dict[str, dict[str, Any]] = {}
    for r in tol["curves"]:
        if r.get("mean") is None or r.get("p5") is None:
            continue
        c = out.setdefault(r["error"], {"error": r["error"], "unit": r.get("unit", ""), "x": [], "mean": [], "p5": []})
        c["x"].append(r["magnitude"])
        c["mean"].append(r["mean"])
        c["p5"].append(r["p5"])
    return list(out.values()) or None


# ------------------------------------------------------------------------------------------------ HTML parts
def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    """An HTML table; cells are HTML already (escape text with ``esc``)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kv(rows: list[tuple[str, str]], cls: str = "") -> str:
    return _table(["quantity", "value"], [[esc(k), v] for k, v in rows], cls)


def _total_height_um(sheet: Mapping[str, Any], plate_pitch_m: float) -> float:
    """Height of the printed part (µm): plates stacked at the plate pitch, the top one with its tallest level."""
    layers = int(sheet["geometry"]["layers"])
    top_um = max(r["snapped_height_um"] for r in sheet["levels"])
    return (layers - 1) * plate_pitch_m * 1e6 + float(sheet["base_m"]) * 1e6 + top_um


def _verdict(sheet: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """Print / don't print / ask, with the reasons (from the checks, verification, warnings and printability)."""
    bad, ask = [], []
    failed = sheet.get("checks_failed") or []
    if failed:
        bad.append(f"{len(failed)} file check(s) failed: {', '.join(failed)}")
    ver = sheet.get("verification")
    if not ver:
        ask.append("printed-object verification not run yet")
    elif not ver.get("passed"):
        bad.append("printed-object verification failed: " + "; ".join(ver.get("problems", [])))
    warnings = (sheet.get("extra") or {}).get("warnings") or []
    if warnings:
        ask.append(f"{len(warnings)} export warning(s) (see Warnings)")
    iso = sum(m["spots"]["isolated"]["count"] for m in data["masks"])
    tall = sum(m["spots"]["aspect"]["count"] for m in data["masks"])
    pixels = data["layers"] * data["neurons"] ** 2
    if tall:
        ask.append(f"{tall} pixel(s) with wall height / width ≥ {ASPECT_WARN:g}")
    if iso:
        ask.append(f"{iso} isolated pixel(s) ({iso / pixels:.1%}): one-pixel pillars and pits")
    if not sheet.get("tolerance"):
        ask.append("fabrication tolerances not computed yet")
    if bad:
        cls, word = "bad", "Don't print"
        reasons = bad + ask
    elif ask:
        cls, word = "warn", "Ask before printing"
        reasons = ask
    else:
        cls, word = "ok", "Ready to print"
        reasons = ["file checks and printed-object verification passed; no warnings"]
    items = "".join(f"<li>{esc(r)}</li>" for r in reasons)
    return (f'<div class="verdict {cls}" id="verdict"><b class="{cls}" data-verdict="{cls}">{word}</b>'
            f"<ul>{items}</ul></div>")


def _glance(sheet: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    geo, mat = sheet["geometry"], sheet["material"]
    extra = sheet.get("extra") or {}
    printer = extra.get("printer") or {}
    plate_pitch_m = data["plate_pitch_um"] * 1e-6
    side_um = geo["layer_size_m"] * 1e6
    conv = sheet.get("conventions") or {}
    rows = [
        ("masks", num(geo["layers"], 0, key="geometry.layers")),
        ("neurons per side", num(geo["neurons"], 0, key="geometry.neurons")),
        ("neuron pitch", num(geo["pitch_m"], 4, key="geometry.pitch_m", scale=1e6, unit="µm")),
        ("footprint (aperture)", f"{side_um:.3f} µm × {side_um:.3f} µm"),
        ("mask spacing (top of base to top of base)", num(geo["spacing_m"], 3, key="geometry.spacing_m", scale=1e6,
                                                          unit="µm")),
        ("input plane → mask 1 / last mask → detector",
         num(geo["d_in_m"], 3, key="geometry.d_in_m", scale=1e6, unit="µm") + " / "
         + num(geo["d_out_m"], 3, key="geometry.d_out_m", scale=1e6, unit="µm")),
        ("base slab", num(sheet["base_m"], 4, key="base_m", scale=1e6, unit="µm")),
        ("tallest level above the base",
         f"{max(r['snapped_height_um'] for r in sheet['levels']):.4f} µm"),
        ("total stack height (plates at the plate pitch)", f"{_total_height_um(sheet, plate_pitch_m):.4f} µm "
         f"(plate pitch {data['plate_pitch_um']:.4f} µm)"),
        ("material", f"{esc(mat['name'])}, n = " + num(mat["n"], 5, key="material.n")
         + (" (nominal: measure it)" if mat.get("nominal") else "")),
        ("medium", "n_med = " + num(sheet["n_medium"], 5, key="n_medium")),
        ("wavelength λ0", num(sheet["wavelength_m"], 2, key="wavelength_m", scale=1e9, unit="nm")),
        ("height of a 2π step", num(sheet["height_2pi_m"], 4, key="height_2pi_m", scale=1e6, unit="µm")),
        ("printer profile", f"{esc(printer.get('name', '—'))}: {esc(printer.get('description', ''))}"),
        ("light direction", esc(conv.get("light-entry face", "—"))),
        ("design", esc(f"{(extra.get('design') or {}).get('method', '?')} · task "
                       f"{(extra.get('design') or {}).get('task', '?')} · {len(sheet['levels'])} levels")),
    ]
    rows += _headline_metric((extra.get("design") or {}).get("metrics_test") or {})
    return _kv(rows, "glance")


def _headline_metric(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The design's headline test metric as a glance row (none if it records neither accuracy nor SSIM)."""
    for name in HEADLINE_ORDER:
        if name in metrics:
            spec = metric_spec(name)
            # the page has always written this scale as data-scale="100" (an integer) and left SSIM's default
            shown = {"scale": round(spec.scale), "unit": spec.unit} if spec.unit else {}
            return [(f"design test {metric_title(name)} (training model)",
                     num(metrics[name], spec.digits, key=f"extra.design.metrics_test.{name}", **shown))]
    return []


def _orientation(sheet: Mapping[str, Any]) -> str:
    conv = sheet.get("conventions") or {}
    rows = [(k, esc(v)) for k, v in conv.items()]
    extra = sheet.get("extra") or {}
    marks = (extra.get("gds") or extra.get("oas") or {}).get("marks")
    if marks:
        frame, crosses = marks["frame"], marks["crosses"]
        rows.append(("orientation marks (GDS/OASIS layer "
                     f"{marks['layer']}/{marks['datatype']})",
                     esc(f"{frame['shape']}, bars {frame['bar_width_um']:.3f} µm wide, {frame['clearance_um']:.3f} "
                         f"µm clear of the aperture; 4 × {crosses['shape']} {crosses['size_um']:.3f} µm across at "
                         + "; ".join("(" + ", ".join(f"{c:.3f}" for c in xy) + ")" for xy in crosses["centres_um"])
                         + " µm")))
    else:
        rows.append(("orientation marks", "none in this export (GDS/OASIS not exported)"))
    return _kv(rows)


def _mask_cards(data: Mapping[str, Any]) -> str:
    """One card per mask (level map, scale bar, legend) and one 3D relief viewer showing the chosen mask.

    One viewer, not one per mask: a browser keeps only about 16 WebGL contexts alive, and a page of many large
    masks stays responsive.
    """
    b = data["view3d"]["block"]
    rule = (f"every pixel ({data['neurons']}×{data['neurons']})" if b == 1 else
            f"downsampled to blocks of {b}×{b} pixels (b = ceil(N / {data['view3d']['max_blocks']})), each at the "
            "tallest level inside it; the level maps show every pixel")
    cards = []
    for m in data["masks"]:
        l = m["mask"]
        cards.append(
            f'<div class="card" id="mask-{l}"><h3>Mask {l} <button class="view3d" data-mask="{l}">view in 3D'
            f'</button></h3><canvas class="levelmap" id="map-{l}" data-mask="{l}"></canvas>'
            f'<div id="scale-{l}" class="scalebar"></div>'
            f'<div class="controls"><label><input type="checkbox" class="showspots" data-mask="{l}"> show all '
            "printability spots</label></div>"
            f'<div id="legend-{l}"></div></div>')
    options = "".join(f'<option value="{m["mask"]}">mask {m["mask"]}</option>' for m in data["masks"])
    viewer = (
        '<div class="card" id="relief-viewer"><h3>Relief in 3D <select id="relief-mask" aria-label="mask">'
        f"{options}</select></h3>"
        '<div class="figure wide plot3d" id="relief3d"></div>'
        '<div class="controls">vertical exaggeration <input type="range" class="exag" data-target="relief3d" '
        'min="1" max="20" step="1" value="1"> <span class="exagval">1×</span> (1× = true aspect ratio: pillars as '
        f'printed). Drag to rotate, scroll to zoom.</div><div class="muted">3D view: {esc(rule)}.</div></div>')
    return viewer + '<div class="grid">' + "".join(cards) + "</div>"


def _level_table(sheet: Mapping[str, Any], colors: list[str]) -> str:
    rows = []
    for i, r in enumerate(sheet["levels"]):
        p = f"levels.{i}."
        rows.append([
            f'<span class="swatch" style="background:{colors[i]}"></span> {r["k"]}',
            num(r["phase_rad"], 4, key=p + "phase_rad"),
            num(r["height_um"], 4, key=p + "height_um"),
            num(r["snapped_height_um"], 4, key=p + "snapped_height_um"),
            num(r["total_height_um"], 4, key=p + "total_height_um"),
            num(r["phase_error_rad"], 4, key=p + "phase_error_rad"),
            "—" if r["z_steps"] is None else num(r["z_steps"], 0, key=p + "z_steps"),
        ])
    return _table(["level k", "phase (rad)", "exact height (µm)", "snapped height (µm)",
                   "from substrate (µm)", "phase error (rad)", "slices above the base"], rows, "levels")


def _print_section(sheet: Mapping[str, Any]) -> str:
    extra = sheet.get("extra") or {}
    job = extra.get("printjob")
    printer = extra.get("printer") or {}
    parts = []
    if job:
        rows = [[num(m["mask"], 0), num(m["volume_um3"], 1, key=f"extra.printjob.masks.{i}.volume_um3"),
                 num(m["slices"], 0, key=f"extra.printjob.masks.{i}.slices"),
                 num(m["hatch_length_mm"], 2, key=f"extra.printjob.masks.{i}.hatch_length_mm"),
                 num(m["time_s"], 1, key=f"extra.printjob.masks.{i}.time_s")]
                for i, m in enumerate(job["masks"])]
        parts.append(_table(["mask", "volume (µm³)", "slices", "hatch length (mm)", "time (s)"], rows))
        parts.append(
            f"<p>Total volume {num(job['total_volume_um3'], 1, key='extra.printjob.total_volume_um3', unit='µm³')}, "
            f"estimated print time {num(job['total_time_s'], 0, key='extra.printjob.total_time_s', unit='s')} "
            f"({job['total_time_s'] / 60:.1f} min) with profile {esc(job.get('profile'))}. "
            f"<span class=\"muted\">Assumptions: {esc(job.get('assumptions', '—'))}.</span></p>")
    else:
        parts.append("<p>(print time not estimated)</p>")
    speed = printer.get("scan_speed_m_per_s")
    parts.append(_kv([
        ("slicing distance Δz", "none (grayscale: exact heights)" if printer.get("slicing_distance_um") is None else
         num(printer["slicing_distance_um"], 3, key="extra.printer.slicing_distance_um", unit="µm")),
        ("hatching distance", "—" if printer.get("hatching_distance_um") is None else
         num(printer["hatching_distance_um"], 3, key="extra.printer.hatching_distance_um", unit="µm")),
        ("scan speed", "—" if speed is None else f"{speed * 1e3:g} mm/s"),
        ("laser power", esc(printer.get("laser_power", "—"))),
        ("objective", esc(printer.get("objective", "—"))),
        ("resin", esc(printer.get("resin", "—"))),
        ("source of these settings", esc(printer.get("source", "—"))),
        ("height convention", esc(printer.get("convention", "—"))),
    ]))
    return "".join(parts)


def _printability(sheet: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    report = (sheet.get("extra") or {}).get("printability") or {}
    rows = []
    for i, (m, d) in enumerate(zip(report.get("masks", []), data["masks"])):
        rows.append([
            str(m["mask"]),
            num(m["isolated"], 0, key=f"extra.printability.masks.{i}.isolated")
            + f" ({m['isolated_fraction']:.1%})",
            num(m["diagonal_contacts"], 0, key=f"extra.printability.masks.{i}.diagonal_contacts"),
            num(m["narrow_pixels"], 0, key=f"extra.printability.masks.{i}.narrow_pixels"),
            f"{d['max_aspect']:.2f} ({d['spots']['aspect']['count']} ≥ {ASPECT_WARN:g})",
        ])
    intro = (f"<p class=\"muted\">Definitions: {esc(report.get('definitions', '—'))}. Aspect ratio: wall height "
             "(height above the lowest 4-neighbour) over feature width (one pitch for a pixel in no 2×2 square of its "
             f"level, else two); flagged at ≥ {ASPECT_WARN:g}, a rule of thumb for free-standing polymer features, "
             "not a measured limit. Click a spot below to see it on its mask's map.</p>")
    table = _table(["mask", "isolated pixels", "corner-only contacts", "one-pixel-wide pixels",
                    "largest aspect ratio"], rows, "printability")
    return intro + table + '<div id="spotlists"></div>'


def _verification(sheet: Mapping[str, Any], export_name: str) -> str:
    ver = sheet.get("verification")
    if not ver:
        return not_run("Printed-object verification", f"quaton-fab verify DESIGN_DIR {export_name}")
    spec = metric_spec(ver["metric"])
    unit_scale, digits, unit = spec.scale, spec.digits, spec.unit

    def v(key: str) -> str:
        return num(ver[key], digits, key=f"verification.{key}", scale=unit_scale, unit=unit)

    result = ('<span class="ok">PASSED</span>' if ver["passed"] else
              '<span class="bad">FAILED</span>: ' + esc("; ".join(ver.get("problems", []))))
    rows = [
        ("metric", esc(f"{ver['metric']} on {ver['samples']} test samples")),
        ("design (training model)", v("design_metric") + f" <span class=\"muted\">{esc(ver['design_fidelity'])}"
         "</span>"),
        ("design as printed object", v("reference_design_metric")),
        ("files as printed object (worst file)", v("files_metric") + f" <span class=\"muted\">"
         f"{esc(ver['reference_fidelity'])}</span>"),
        ("gap (a) files vs design", v("gap_files")),
        ("gap (b) printed-object model vs training model", v("gap_model")),
        ("total gap (tolerance −" + (f"{ver['tolerance'] * unit_scale:.{digits}f}{unit}") + ")", v("total_gap")),
        ("result", result),
    ]
    files = _table(["file", "read back with", "level match", metric_label(ver["metric"])], [
        [esc(f["file"]), esc(f["reader"]), f"{f['level_match']:.4%}",
         num(f["metric"], digits, key=f"verification.files.{i}.metric", scale=unit_scale, unit=unit)]
        for i, f in enumerate(ver.get("files", []))])
    return _kv(rows, "verification") + "<h3>Files read back</h3>" + files


def metric_label(metric: str) -> str:
    """Column title of a metric (:func:`quaton_fab.tasks.metrics.metric_title`)."""
    return metric_title(metric)


def _crosscheck(sheet: Mapping[str, Any], export_dir: Path | None, export_name: str) -> str:
    cc = sheet.get("crosscheck")
    if not cc:
        return not_run("Rigorous cross-check (RCWA)", f"quaton-fab crosscheck DESIGN_DIR {export_name}")
    intro = (f"<p>{esc(cc.get('solver', '?'))}: {num(cc.get('patches'), 0, key='crosscheck.patches')} patches of "
             f"{num(cc.get('patch_pixels'), 0, key='crosscheck.patch_pixels')} pixels, "
             f"{num(cc.get('harmonics'), 0, key='crosscheck.harmonics')} harmonics. "
             f"Command: <code>{esc(cc.get('command', '—'))}</code></p>")
    rows = [[esc(r.get("model", "—")), esc(r.get("polarisation", "—"))] + [
        num(r.get(k), 4, key=f"crosscheck.rows.{i}.{k}") for k in ("l1_mean", "l1_worst", "complex_mean",
                                                                   "complex_worst")]
        for i, r in enumerate(cc.get("rows") or [])]
    table = _table(["model", "polarisation", "L1 error (mean)", "L1 error (worst)", "complex error (mean)",
                    "complex error (worst)"], rows, "crosscheck")
    note = f"<p class=\"muted\">{esc(cc['note'])}</p>" if cc.get("note") else ""
    fig = ""
    name = cc.get("figure")
    if name and export_dir is not None:
        uri = image_data_uri(export_dir / Path(name).name)
        fig = (f'<img class="fig figure-img" alt="rigorous model-error figure" src="{uri}">' if uri else
               f"<p class=\"muted\">(figure {esc(name)} is not in the export folder)</p>")
    return intro + table + note + fig


def _tolerance(sheet: Mapping[str, Any], export_name: str, has_curves: bool) -> str:
    tol = sheet.get("tolerance")
    if not tol:
        return not_run("Fabrication tolerances", f"quaton-fab tolerance DESIGN_DIR {export_name}")
    intro = (f"<p>Largest error magnitude keeping the {esc(tol['metric'])} within {tol['allowed_loss']:g} of the "
             f"nominal print: {tol['trials']} trials on {tol['samples']} test samples, seed {tol['seed']}, fidelity "
             f"{esc(tol['fidelity'])}. Command (equivalent): <code>quaton-fab tolerance DESIGN_DIR {esc(export_name)} "
             f"--trials {tol['trials']} --samples {tol['samples']} --seed {tol['seed']}</code></p>")
    rows = [[esc(r["error"]), "below the smallest swept" if r["max_magnitude"] is None else
             num(r["max_magnitude"], 4, key=f"tolerance.rows.{i}.max_magnitude") + f" {esc(r['unit'])}",
             esc(r.get("source", "—"))] for i, r in enumerate(tol.get("rows", []))]
    fig = ('<div class="figure wide plot2d" id="tolerance-curves"></div>' if has_curves else
           '<p class="muted">(this sheet records the limits only; rerun <code>quaton-fab tolerance</code> to add '
           "the curves)</p>")
    return intro + fig + _table(["error", "largest magnitude within the loss", "source"], rows, "tolerance")


def _files(sheet: Mapping[str, Any]) -> str:
    rows = []
    for i, f in enumerate(sheet.get("files", [])):
        if f["name"] == REPORT_NAME:
            continue
        rows.append([f'<span class="mono">{esc(f["name"])}</span>', num(f["bytes"], 0, key=f"files.{i}.bytes"),
                     f'<span class="mono" data-key="files.{i}.sha256" data-text="{esc(f["sha256"])}">'
                     f'{esc(f["sha256"])}</span>'])
    rows.append([f'<span class="mono">{REPORT_NAME}</span>', "—", "this page: its size and SHA-256 are in "
                 "fab_sheet.json"])
    rows.append(['<span class="mono">fab_sheet.json</span>, <span class="mono">fab_sheet.md</span>', "—",
                 "the sheet these numbers come from (fab_sheet.json holds its own SHA-256)"])
    return _table(["file", "bytes", "SHA-256"], rows, "files")


def _checks(sheet: Mapping[str, Any]) -> str:
    checks = sheet.get("checks") or {}
    rows = [[esc(k), '<span class="ok">passed</span>' if v is True else '<span class="bad">FAILED</span>'
             if v is False else esc(v)] for k, v in checks.items()]
    return _table(["read-back check", "result"], rows, "checks") if rows else "<p>(no checks run)</p>"


def _warnings(sheet: Mapping[str, Any]) -> str:
    warnings = (sheet.get("extra") or {}).get("warnings")
    if not warnings:
        return "<p>None.</p>"
    return "<ul>" + "".join(f'<li class="warn">{esc(w)}</li>' for w in warnings) + "</ul>"


def export_command(sheet: Mapping[str, Any], export_name: str) -> str:
    """The command that made the export: recorded by the CLI, else an equivalent one from the sheet."""
    extra = sheet.get("extra") or {}
    if extra.get("command"):
        return str(extra["command"])
    printer = (extra.get("printer") or {}).get("name")
    parts = ["quaton-fab", "export", "DESIGN_DIR", "--material", sheet["material"]["name"],
             "--base", f"{float(sheet['base_m']) * 1e6:.6g}um"]
    if printer:
        parts += ["--printer", printer]
    if extra.get("stack"):
        parts.append("--stack")
    return shlex.join(parts + ["--out", export_name])


def _commands(sheet: Mapping[str, Any], export_name: str) -> str:
    rows = [("export (wrote every file listed above)", export_command(sheet, export_name))]
    if sheet.get("verification"):
        rows.append(("verify (recorded the verification)", f"quaton-fab verify DESIGN_DIR {export_name}"))
    if sheet.get("tolerance"):
        rows.append(("tolerance (recorded the tolerances)", f"quaton-fab tolerance DESIGN_DIR {export_name}"))
    if sheet.get("crosscheck"):
        rows.append(("crosscheck (recorded the rigorous cross-check)", str(sheet["crosscheck"].get("command", ""))))
    return _table(["step", "command"], [[esc(k), f"<code>{esc(v)}</code>"] for k, v in rows], "commands")


_SECTIONS = (("verdict", "Decision"), ("glance", "Part at a glance"), ("orientation", "Orientation"),
             ("masks", "Masks"), ("stack", "Stack"), ("levels", "Levels and print"),
             ("printability", "Printability"), ("verification", "Verification"), ("tolerances", "Tolerances"),
             ("files", "Files and commands"))


def render_design_report(sheet: Mapping[str, Any], levels: np.ndarray, *, export_dir: str | Path | None = None,
                         export_name: str = "EXPORT_DIR") -> str:
    """The report page (HTML text) of an export's fab sheet and its (L, N, N) level indices.

    ``export_dir`` is where figures named in the sheet (the cross-check figure) are read from; ``export_name``
    is how the export folder is named in the commands the page shows.
    """
    data = report_data(sheet, levels, export_name)
    folder = Path(export_dir) if export_dir is not None else None
    extra = sheet.get("extra") or {}
    design = extra.get("design") or {}
    geo = sheet["geometry"]
    title = (f"Design report: {design.get('method', '?')} {design.get('task', '')}, {geo['layers']} masks of "
             f"{geo['neurons']}×{geo['neurons']}, {len(sheet['levels'])} levels, {sheet['material']['name']}")
    nav = "".join(f'<a href="#{k}">{esc(t)}</a>' for k, t in _SECTIONS)

    def section(key: str, title_: str, content: str) -> str:
        return f'<section id="{key}"><h2>{esc(title_)}</h2>{content}</section>'

    body = "".join([
        f"<header><h1>{esc(title)}</h1><div class=\"sub\">{esc(sheet.get('software', ''))} · fab sheet "
        f"{esc(sheet.get('schema', ''))} v{esc(sheet.get('version', ''))} · open offline, nothing is fetched</div>"
        "</header>",
        f"<nav>{nav}</nav><main>",
        section("verdict", "Decision: print / don't print / ask", _verdict(sheet, data)),
        section("glance", "Part at a glance", _glance(sheet, data)),
        section("orientation", "Orientation, axes and light direction", _orientation(sheet)),
        section("masks", "Masks: level maps and reliefs", _mask_cards(data)),
        section("stack", "The stack in 3D",
                '<div class="figure wide plot3d" id="stack3d"></div><div class="controls">vertical exaggeration '
                '<input type="range" class="exag" data-target="stack3d" min="1" max="20" step="1" value="1"> '
                '<span class="exagval">1×</span></div><p class="muted">Plates at the plate pitch (z from the '
                "substrate, µm); the arrow shows where the light enters. Supports are in stack.stl, not drawn.</p>"),
        section("levels", "Level table, volume, print time, slicing and hatching",
                _level_table(sheet, data["colors"]) + "<h3>Volume and print time</h3>" + _print_section(sheet)),
        section("printability", "Printability", _printability(sheet, data)),
        section("verification", "Printed-object verification",
                _verification(sheet, export_name) + "<h3>Rigorous cross-check of the relief model</h3>"
                + _crosscheck(sheet, folder, export_name)),
        section("tolerances", "Fabrication tolerances",
                _tolerance(sheet, export_name, data["tolerance_curves"] is not None)),
        section("files", "Files, checks, warnings and commands",
                _files(sheet) + "<h3>Read-back checks at export</h3>" + _checks(sheet)
                + "<h3>Warnings raised during export</h3>" + _warnings(sheet) + "<h3>Commands</h3>"
                + _commands(sheet, export_name)),
        "</main>",
    ])
    return html_document(title, body, data, [plotly_js(), asset_text("design_report.js")])


def _report_name(export_dir: Path) -> str:
    return export_dir.name or "EXPORT_DIR"


def write_design_report(folder: str | Path, sheet: Mapping[str, Any], levels: np.ndarray,
                        export_name: str | None = None) -> Path:
    """Write ``report.html`` into ``folder`` (atomically); returns its path."""
    out = Path(folder)
    text = render_design_report(sheet, levels, export_dir=out, export_name=export_name or _report_name(out))
    return atomic_write_bytes(out / REPORT_NAME, text.encode("utf-8"))


def read_report_levels(path: str | Path, neurons: int | None = None, layers: int | None = None) -> np.ndarray:
    """The (L, N, N) level indices embedded in a ``report.html``."""
    return read_report(path, neurons, layers)[0]


def read_report(path: str | Path, neurons: int | None = None,
                layers: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Level indices (L, N, N) and the data block of a ``report.html``."""
    p = Path(path)
    try:
        data = read_page_data(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read {str(p)!r}: {exc}") from None
    except PageError as exc:
        raise ReportError(f"{p}: {exc}") from None
    if data.get("schema") != REPORT_SCHEMA:
        raise ReportError(f"{p}: not a design report (schema {data.get('schema')!r})")
    n = int(data["neurons"])
    if (neurons is not None and n != neurons) or (layers is not None and len(data["masks"]) != layers):
        raise ReportError(f"{p}: holds {len(data['masks'])} masks of {n}×{n}, expected {layers} of {neurons}×{neurons}")
    return np.stack([_decode_levels(m["levels"], n) for m in data["masks"]]), data


def refresh_report(export_dir: str | Path, sheet: dict[str, Any]) -> bool:
    """Rebuild the export's ``report.html`` from ``sheet`` and update its file entry (size, SHA-256) in ``sheet``.

    Does nothing when the sheet lists no report. A report that no longer has the SHA-256 the sheet lists is left
    as it is (``verify`` reports it as changed) rather than rebuilt over, and a report made from this very sheet
    (same :func:`source_digest`) is not rendered again. Returns True when the page was rebuilt.
    """
    folder = Path(export_dir)
    entry = next((f for f in sheet.get("files", []) if isinstance(f, dict) and f.get("name") == REPORT_NAME), None)
    if entry is None:
        return False
    path = folder / REPORT_NAME
    try:
        current = path.read_bytes()
    except OSError:
        log.warning("%s is listed in the fab sheet but cannot be read; not rebuilt", path)
        return False
    if hashlib.sha256(current).hexdigest() != entry.get("sha256"):
        log.warning("%s changed since it was written (SHA-256 differs from the fab sheet); not rebuilt", path)
        return False
    try:
        if read_page_data(current.decode("utf-8")).get("sheet_digest") == source_digest(sheet):
            return False  # made from this very sheet: nothing to rebuild
    except (UnicodeDecodeError, PageError):
        pass  # read_report below names the problem
    levels, data = read_report(path, sheet["geometry"]["neurons"], sheet["geometry"]["layers"])
    name = str(data.get("export_name") or _report_name(folder))
    text = render_design_report(sheet, levels, export_dir=folder, export_name=name).encode("utf-8")
    if text != current:
        atomic_write_bytes(path, text)
    entry["bytes"] = len(text)
    entry["sha256"] = hashlib.sha256(text).hexdigest()
    return True
