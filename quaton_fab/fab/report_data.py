"""The design report's data block: level maps (encoded), printability spots, colours and tolerance curves.

What ``report.html`` embeds as JSON (:func:`report_data`) and how it is read back (:func:`read_report`); the
constants of the page (name, schema, 3D block rule, spot limits) live here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from quaton_fab.html_page import PageError, read_page_data
from quaton_fab.printing.printability import diagonal_contact_windows, isolated_pixels


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
