"""The fabrication sheet: what a facility needs to print an exported design, as JSON and as Markdown.

One idea: gather the level table, material, geometry, exported files (with sizes and SHA-256) and the checks
into one dict (:func:`build_fab_sheet`), then write it as ``fab_sheet.json`` (machine-readable; the
``level_table`` entry is in SI units and rebuilds with ``LevelTable.from_dict``) and ``fab_sheet.md`` (a
human-readable table in µm/nm), each atomically (temporary name in the same folder, then ``os.replace``).

Checks: a value ``True`` means passed, ``False`` failed, and a string is a note shown as-is (e.g. "skipped").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from quaton_fab.bounded import load_json_file
from quaton_fab.fileio import atomic_write_bytes
from quaton_fab.validate import count, length_m
from quaton_fab.errors import FabError
from quaton_fab._version import __version__
from quaton_fab.printing.level_table import LevelTable
from quaton_fab.fab.report_html import refresh_report
from quaton_fab.printing.printer import PrinterError, get_profile

logger = logging.getLogger(__name__)

SHEET_SCHEMA = "quaton-fab/fab-sheet"
SHEET_VERSION = 1
JSON_NAME = "fab_sheet.json"
MD_NAME = "fab_sheet.md"
#: The sheet's own hash entry: SHA-256 of the canonical JSON of every other entry (see :func:`sheet_digest`).
SHEET_HASH_KEY = "sheet_sha256"


class SheetError(FabError):
    """A geometry value, file or check that cannot go on the fab sheet."""


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict:
    """Name (relative to ``root``, else the base name), size in bytes and SHA-256 of an exported file."""
    p = Path(path)
    if not p.is_file():
        raise SheetError(f"exported file {str(p)!r} does not exist")
    if root is None:
        name = p.name
    else:
        try:
            name = p.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            name = p.name
    return {"name": name, "bytes": p.stat().st_size, "sha256": _sha256(p)}


def _check_checks(checks: Mapping[str, bool | str]) -> dict[str, bool | str]:
    """Copy of ``checks`` after making sure every value is a bool or a string."""
    out: dict[str, bool | str] = {}
    for name, value in checks.items():
        if isinstance(value, (bool, np.bool_)):
            out[str(name)] = bool(value)
        elif isinstance(value, str):
            out[str(name)] = value
        else:
            raise SheetError(f"check {name!r} must be True, False or a note string, got {value!r}")
    return out


def level_rows(table: LevelTable) -> list[dict]:
    """The level table as rows in facility units: heights in µm, phases in rad."""
    steps = table.z_steps
    return [
        {
            "k": int(table.k[i]),
            "phase_rad": float(table.phase_rad[i]),
            "height_um": float(table.height_m[i] * 1e6),
            "snapped_height_um": float(table.snapped_height_m[i] * 1e6),
            "total_height_um": float(table.total_height_m[i] * 1e6),
            "phase_error_rad": float(table.phase_error_rad[i]),
            "z_steps": None if steps is None else int(steps[i]),
        }
        for i in range(table.n)
    ]


def build_fab_sheet(
    table: LevelTable,
    *,
    pitch_m: float,
    neurons: int,
    layers: int,
    spacing_m: float,
    d_in_m: float,
    d_out_m: float,
    files: Iterable[str | os.PathLike] = (),
    checks: Mapping[str, bool | str] | None = None,
    extra: Mapping[str, object] | None = None,
    root: str | os.PathLike | None = None,
) -> dict:
    """Assemble the fab sheet dict (JSON-ready).

    Args:
        table: the level table the files were exported with.
        pitch_m: neuron pitch (m); neurons: neurons per side; layers: number of masks.
        spacing_m, d_in_m, d_out_m: mask-to-mask, input-to-first-mask and last-mask-to-detector distances (m).
        files: exported files (must exist); listed with size and SHA-256, named relative to ``root`` if given.
        checks: name → True (passed) / False (failed) / note string.
        extra: anything else worth recording (JSON-serialisable).
    """
    pitch = length_m(pitch_m, "pitch", error=SheetError)
    n_side = count(neurons, "neurons", error=SheetError)
    n_layers = count(layers, "layers", error=SheetError)
    geometry = {
        "pitch_m": pitch,
        "neurons": n_side,
        "layers": n_layers,
        "layer_size_m": pitch * n_side,
        "d_in_m": length_m(d_in_m, "d_in", allow_zero=True, error=SheetError),
        "spacing_m": length_m(spacing_m, "spacing", allow_zero=True, error=SheetError),
        "d_out_m": length_m(d_out_m, "d_out", allow_zero=True, error=SheetError),
    }
    checked = _check_checks(checks or {})
    sheet = {
        "schema": SHEET_SCHEMA,
        "version": SHEET_VERSION,
        "software": f"quaton-fab {__version__}",
        "material": {
            "name": table.material,
            "n": table.n_material,
            "source": table.material_source,
            "nominal": table.material_nominal,
        },
        "wavelength_m": table.wavelength_m,
        "n_medium": table.n_medium,
        "delta_n": table.delta_n,
        "height_2pi_m": table.height_2pi_m,
        "base_m": table.base_m,
        "z_step_m": table.z_step_m,
        "geometry": geometry,
        "levels": level_rows(table),
        "level_table": table.to_dict(),
        "files": [file_entry(f, root) for f in files],
        "checks": checked,
        "checks_passed": [k for k, v in checked.items() if v is True],
        "checks_failed": [k for k, v in checked.items() if v is False],
        "all_checks_passed": not any(v is False for v in checked.values()),
        "verification": None,
        "extra": dict(extra or {}),
    }
    sheet["conventions"] = conventions(sheet)  # the Markdown's conventions, also in the machine-readable twin
    return sheet


def _json_default(obj: object) -> object:
    """JSON fallback for numpy scalars/arrays and paths found in ``extra``."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"value of type {type(obj).__name__} is not JSON-serialisable")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def sheet_digest(sheet: dict[str, Any]) -> str:
    """SHA-256 (hex) of the sheet's canonical JSON without its ``sheet_sha256`` entry.

    The sheet is first passed through a JSON round trip, so a dict holding numpy scalars and the same sheet read
    back from ``fab_sheet.json`` give the same digest.
    """
    plain = json.loads(json.dumps({k: v for k, v in sheet.items() if k != SHEET_HASH_KEY}, default=_json_default))
    return hashlib.sha256(_canonical(plain)).hexdigest()


def _cell(value: object) -> str:
    """Markdown table cell text (pipes escaped, newlines flattened)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _um(x_m: float | None, digits: int = 4) -> str:
    """A length (m) in µm with ``digits`` decimals; an em dash for None."""
    return "—" if x_m is None else f"{x_m * 1e6:.{digits}f} µm"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    """Markdown table lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _fmt(value: object, digits: int = 4) -> str:
    """A number with ``digits`` significant decimals, anything else as text; an em dash for None."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        tiny_or_huge = abs(value) >= 1e4 or (value != 0 and abs(value) < 1e-3)
        return f"{value:.{digits}g}" if tiny_or_huge else f"{value:.{digits}f}"
    return str(value)


def pixel_square_um(row: int, col: int, neurons: int, pitch_m: float) -> list[float]:
    """[x0, y0, x1, y1] (µm) of pixel (row, col) in STL and GDS: x = col·p, y = (N − 1 − row)·p (origin lower-left)."""
    p_um = pitch_m * 1e6
    return [col * p_um, (neurons - 1 - row) * p_um, (col + 1) * p_um, (neurons - row) * p_um]


def conventions(sheet: dict) -> dict[str, str]:
    """The frame conventions of every exported file, in words, with the numbers of this export.

    What each statement rests on: ``fab/stl.py`` and ``fab/gds.py`` (pixel (row i, col j) covers
    x ∈ [j·p, (j+1)·p], y ∈ [(N−1−i)·p, (N−i)·p]; STL z = build direction, base from z = 0),
    ``fab/heightmap_png.py`` (array row 0 is the image's top row) and ``optics/relief.py`` (base-first: light
    enters through the base slab). ``tests/test_sheet_conventions.py`` checks these statements against the files.
    """
    geo = sheet["geometry"]
    n, pitch = int(geo["neurons"]), float(geo["pitch_m"])
    side_um = n * pitch * 1e6
    sq = pixel_square_um(0, 0, n, pitch)
    relief = ((sheet.get("extra") or {}).get("simulation") or {}).get("relief") or {}
    orientation = relief.get("orientation", "base-first")
    base_um = sheet["base_m"] * 1e6
    if orientation == "relief-first":
        entry = ("the relief tops: light meets the pillar tips first, crosses the relief, then the base slab, and "
                 "leaves through the bottom face (z = 0); in the STL frame it travels along −z")
    else:
        entry = (f"the bottom face of the base slab (z = 0, the substrate side): light crosses the {base_um:.4g} µm "
                 "base, then the relief, and leaves through the pillar tops; in the STL frame it travels along +z")
    return {
        "axes": (f"x = column · pitch, y = (N − 1 − row) · pitch, z = build direction (up, away from the substrate); "
                 f"origin at the aperture's lower-left corner; aperture [0, {side_um:.4f}] × [0, {side_um:.4f}] µm; "
                 "the same in every STL and every GDS/OASIS MASK_l cell"),
        "handedness": "right-handed (x × y = z); STL faces are wound counter-clockwise seen from outside "
                      "(top faces counter-clockwise seen from +z)",
        "pixel (0, 0)": (f"row 0, column 0 of the mask array (the top-left pixel of the mask image) is the square "
                         f"x ∈ [{sq[0]:.4f}, {sq[2]:.4f}] µm, y ∈ [{sq[1]:.4f}, {sq[3]:.4f}] µm in STL and GDS, and "
                         "image pixel (0, 0) (top-left) in every PNG/TIFF/BMP height map"),
        "view direction": "the mask image (and the input image and detector layout of the design) is upright "
                          "seen from +z, i.e. looking down on the relief from above, towards the substrate",
        "light-entry face": entry,
        "mirroring": ("seen through the substrate (from −z, the way base-first light arrives) the mask appears "
                      "mirrored left–right: pixel (0, 0) is then at the top-right; all planes (input, masks, detector) "
                      "share the same x/y mapping, so a whole system mirrored alike works the same, but a single "
                      "mirrored mask does not"),
        "heights": (f"z = 0 substrate; base slab 0 … {base_um:.4f} µm; a pixel of level k has its top at "
                    "base + h_k (the printed height column of the level table)"),
    }


def _section(lines: list[str], title: str, intro: str | None = None) -> None:
    lines += ["", f"## {title}", ""]
    if intro:
        lines += [intro, ""]


def _kv(lines: list[str], rows: list[list[object]]) -> None:
    lines += _table(["quantity", "value"], rows)


def _optical_path(lines: list[str], sheet: dict) -> None:
    geo = sheet["geometry"]
    _section(lines, "Optical path outside the part",
             "Distances are in the medium (n_med) and measured from/to the plane where a relief starts (the top of "
             "its base slab); the next mask's base slab lies inside the gap before it.")
    _kv(lines, [
        ["input plane → top of mask 1's base (d_in)", _um(geo["d_in_m"], 3)],
        ["top of base → top of next base (spacing)", _um(geo["spacing_m"], 3)],
        ["top of the last base → detector plane (d_out)", _um(geo["d_out_m"], 3)],
        ["medium filling every gap", f"n_med = {sheet['n_medium']:.5f}"],
        ["substrate thickness", "0 µm: no substrate is simulated, every gap is medium. A substrate of thickness t and "
         "index n_s placed in the input path (before mask 1) or the output path (after mask L) acts, for paraxial "
         "light, like t·n_med/n_s of medium: it shortens the effective d_in or d_out by t·(1 − n_med/n_s). "
         "Re-simulate (or re-design with adjusted d_in/d_out) before adding one; inside the stack there is none"],
    ])


def _printer_section(lines: list[str], sheet: dict) -> None:
    extra = sheet.get("extra") or {}
    printer = extra.get("printer")
    job = extra.get("printjob")
    if not printer and job:

        try:
            printer = get_profile(job.get("profile")).to_dict()
        except PrinterError:
            printer = None
    _section(lines, "Printer profile and recommended print settings")
    if not printer:
        lines.append("(no printer profile recorded)")
        return
    material = sheet["material"]["name"]
    resin = printer.get("resin") or "—"
    fit = "" if str(resin).lower() in (material.lower(), "any") else f" (made for {resin}, not {material}: calibrate)"
    speed = printer.get("scan_speed_m_per_s")
    _kv(lines, [
        ["profile", f"{printer.get('name')}: {printer.get('description', '')}"],
        ["slicing distance (Δz)", _fmt(printer.get("slicing_distance_um")) + " µm"
         if printer.get("slicing_distance_um") is not None else "none (grayscale: no slicing grid)"],
        ["hatching distance", _fmt(printer.get("hatching_distance_um")) + " µm"
         if printer.get("hatching_distance_um") is not None else "—"],
        ["scan speed", "—" if speed is None else f"{speed * 1e3:g} mm/s"],
        ["laser power", printer.get("laser_power", "—")],
        ["objective", printer.get("objective", "—")],
        ["resin" , f"{resin}{fit}"],
        ["source", printer.get("source", "—")],
        ["height convention", printer.get("convention", "heights as in the level table")],
    ])


def _printjob_section(lines: list[str], sheet: dict) -> None:
    job = (sheet.get("extra") or {}).get("printjob")
    _section(lines, "Printed volume and estimated print time")
    if not job:
        lines.append("(not estimated)")
        return
    lines += _table(["mask", "volume (µm³)", "sliced volume (µm³)", "slices", "hatch length (mm)", "time (s)"], [
        [m["mask"], f"{m['volume_um3']:.1f}", f"{m['sliced_volume_um3']:.1f}", m["slices"],
         f"{m['hatch_length_mm']:.2f}", f"{m['time_s']:.1f}"] for m in job["masks"]
    ])
    total_s = job["total_time_s"]
    lines += ["", f"Total: **{job['total_volume_um3']:.1f} µm³**, about **{total_s:.0f} s ({total_s / 60:.1f} min)** "
              f"with profile {job['profile']} (slicing {job['slicing_distance_um']:g} µm, hatching "
              f"{job['hatching_distance_um']:g} µm, {job['scan_speed_mm_per_s']:g} mm/s, "
              f"{job['slice_overhead_s']:g} s per slice). Volume: base slab under the aperture included.",
              "", f"Assumptions: {job['assumptions']}."]


def _stack_section(lines: list[str], sheet: dict) -> None:
    stack = (sheet.get("extra") or {}).get("stack")
    if not stack:
        return
    _section(lines, "Stack (stack.stl)")
    pitch_um = stack.get("plate_pitch_um")
    if pitch_um is None and stack.get("plate_pitch_m") is not None:
        pitch_um = stack["plate_pitch_m"] * 1e6
    rows: list[list[object]] = [
        ["plate pitch (bottom of one plate → bottom of the next)", "—" if pitch_um is None else f"{pitch_um:.4f} µm"],
        ["why this pitch", stack.get("pitch_reason") or stack.get("optics") or "—"],
    ]
    if stack.get("plate_thickness_um") is not None:
        rows.append(["plate thickness", f"{stack['plate_thickness_um']:.4f} µm"])
    if stack.get("plate_z_um") is not None:
        rows.append(["plate bottoms (z, µm)", ", ".join(f"{z:.4f}" for z in stack["plate_z_um"])])
    supports = stack.get("supports")
    if isinstance(supports, dict):
        rows += [
            ["supports: rule", supports.get("rule", "—")],
            ["supports: count", supports.get("count", "—")],
            ["supports: size", f"{_fmt(supports.get('size_um'))} µm"],
            ["supports: positions (x, y in µm)", "; ".join(
                "(" + ", ".join(f"{c:.3f}" for c in pos) + ")" for pos in supports.get("positions_um") or [])
             or "—"],
        ]
    elif stack.get("pillar_um") is not None:
        rows.append(["supports", f"4 square pillars of {stack['pillar_um']:.3f} µm on the corners of a "
                     f"{stack.get('frame_um', 0):.3f} µm frame around each plate"])
    rows += [
        ["drainage", stack.get("drainage") or "the four sides between the supports are open"],
        ["bodies in the file", stack.get("bodies", "—")],
    ]
    if stack.get("volume_um3") is not None:
        rows.append(["printed volume", f"{stack['volume_um3']:.1f} µm³"])
    if stack.get("size_um") is not None:
        rows.append(["overall size (x × y × z)", " × ".join(f"{v:.3f}" for v in stack["size_um"]) + " µm"])
    _kv(lines, rows)


def _marks_section(lines: list[str], sheet: dict) -> None:
    extra = sheet.get("extra") or {}
    layout = extra.get("gds") or extra.get("oas")
    layer_map = extra.get("layer_map")
    if layer_map:
        _section(lines, "GDSII / OASIS layers",
                 "One layer per level (datatype 0); heights above the base slab (the dose table: one dose per "
                 "layer, see the height-map greys below for grayscale writers).")
        lines += _table(["level", "layer/datatype", "name", "height (µm)", "drawn", "rectangles", "area (µm²)"], [
            [row["level"], f"{row['layer']}/{row['datatype']}", row.get("name", ""), f"{row['height_um']:.4f}",
             "yes" if row.get("drawn", True) else "omitted (= bare base)", row.get("polygons", ""),
             f"{row.get('area_um2', 0):.1f}"]
            for row in layer_map
        ])
    _section(lines, "Marks and labels")
    marks = (layout or {}).get("marks")
    rows: list[list[object]] = []
    if marks:
        frame, crosses = marks["frame"], marks["crosses"]
        outer = ", ".join(f"{v:.3f}" for v in frame["outer_square_um"])
        rows += [
            [f"layer {marks['layer']}/{marks['datatype']}: frame", f"{frame['shape']}; bars "
             f"{frame['bar_width_um']:.3f} µm wide ({marks['bar_width_px']:.2f} pixels), {frame['clearance_um']:.3f} "
             f"µm ({marks['clearance_px']:.2f} pixels) clear of the aperture; outer square [{outer}] µm"],
            [f"layer {marks['layer']}/{marks['datatype']}: alignment crosses", f"4 × {crosses['shape']}, "
             f"{crosses['size_um']:.3f} µm across, arms {crosses['arm_width_um']:.3f} µm wide, centred at "
             + "; ".join("(" + ", ".join(f"{c:.3f}" for c in xy) + ")" for xy in crosses["centres_um"]) + " µm"],
            ["frame of reference", marks.get("frame_of_reference", "—")],
        ]
    elif layout:
        rows.append([f"layer {layout.get('mark_layer')}", "no marks drawn"])
    if layout:
        rows.append([f"layer {layout.get('label_layer')}: labels", layout.get("labels", "text labels")])
    rows.append(["STL files", "no marks: each mask STL is the optical part only (aperture plus base slab); "
                 "the printer locates it by its interface finder"])
    _kv(lines, rows)


def _grayscale_section(lines: list[str], sheet: dict) -> None:
    extra = sheet.get("extra") or {}
    grey = extra.get("grayscale")
    if not grey:
        for fmt in ("png", "tiff"):  # older sheets: per-file metadata only
            if extra.get(fmt):
                grey = grey or {}
                meta = extra[fmt][0]
                grey[fmt] = {"bit_depth": meta.get("bit_depth"), "full_scale": meta.get("scale_rule") == "full-scale",
                             "inverted": meta.get("inverted", False), "height_per_grey_nm": meta["height_per_grey_nm"],
                             "level_greys": None}
    if not grey:
        return
    _section(lines, "Height maps (grayscale)",
             "Relief above the base slab (the base is not in the maps); one image pixel per neuron; image row 0 is "
             "the top row (mask row 0).")
    rows = []
    for fmt, g in grey.items():
        files = extra.get(fmt) or []
        used = max((f.get("range_used", 0.0) for f in files), default=None)
        bits = g["bit_depth"]
        relation = (f"height = ({2**bits - 1} − grey) × scale" if g["inverted"] else "height = grey × scale")
        rows.append([fmt, bits, f"{g['height_per_grey_nm']:.6g} nm per grey",
                     "full-scale" if g["full_scale"] else "whole nm", relation,
                     "—" if used is None else f"{used:.1%}",
                     "—" if g.get("level_greys") is None else ", ".join(str(v) for v in g["level_greys"])])
    lines += _table(["format", "bits", "scale", "scale rule", "grey → height", "range used", "grey of level 0, 1, …"],
                    rows)
    lines += ["", "The scale is also in each PNG's text chunks and each TIFF's ImageDescription; BMP files carry none "
              "(this sheet is their only record)."]


def _printability_section(lines: list[str], sheet: dict) -> None:
    report = (sheet.get("extra") or {}).get("printability")
    if not report:
        return
    _section(lines, "Printability", f"Definitions: {report['definitions']}.")
    lines += _table(["mask", "isolated pixels", "diagonal-only contacts", "narrow pixels (in no 2×2 of their level)"], [
        [m["mask"], f"{m['isolated']} ({m['isolated_fraction']:.1%})", m["diagonal_contacts"], m["narrow_pixels"]]
        for m in report["masks"]
    ])
    lines += [""]
    lines += _table(["mask", "level", "pixels", "isolated", "diagonal contacts", "regions", "smallest region",
                     "narrowest width"], [
        [m["mask"], f["level"], f["pixels"], f["isolated"], f["diagonal_contacts"], f["regions"],
         f"{f['smallest_region_px']} px = {f['smallest_region_um2']:.3f} µm²",
         f"{f['narrowest_width_px']} px = {f['narrowest_width_um']:.3f} µm"]
        for m in report["masks"] for f in m["levels"]
    ])


def _gwl_section(lines: list[str], sheet: dict) -> None:
    gwl = (sheet.get("extra") or {}).get("gwl")
    if not gwl:
        return
    _section(lines, "Nanoscribe GWL jobs")
    rows: list[list[object]] = []
    for key in ("slicing_distance_um", "hatching_distance_um"):
        if gwl.get(key) is not None:
            rows.append([key.replace("_um", "").replace("_", " "), f"{gwl[key]:g} µm"])
    for key, value in gwl.items():
        if key in ("slicing_distance_um", "hatching_distance_um", "files"):
            continue
        rows.append([key.replace("_", " "), value if isinstance(value, (str, int, float)) else json.dumps(value)])
    _kv(lines, rows)
    files = gwl.get("files") or []
    if files:
        lines += [""]
        if all(isinstance(f, dict) for f in files):
            keys = list(dict.fromkeys(k for f in files for k in f))
            lines += _table(keys, [[_fmt(f.get(k)) for k in keys] for f in files])
        else:
            lines.append("Files: " + ", ".join(str(f) for f in files))


def _snapping_section(lines: list[str], sheet: dict) -> None:
    snap = (sheet.get("extra") or {}).get("snapping")
    if not snap:
        return
    rows = snap.get("levels") if isinstance(snap, dict) else snap
    _section(lines, "Heights on the slicing grid",
             snap.get("convention") if isinstance(snap, dict) and snap.get("convention") else None)
    if isinstance(snap, dict):
        other = [[k.replace("_", " "), _fmt(v)] for k, v in snap.items()
                 if k not in ("levels", "convention") and isinstance(v, (str, int, float, bool, type(None)))]
        if other:
            _kv(lines, other)
            lines.append("")
    if rows:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        lines += _table(keys, [[_fmt(r.get(k)) for k in keys] for r in rows])


def _tolerance_section(lines: list[str], sheet: dict) -> None:
    tol = (sheet.get("extra") or {}).get("tolerance")
    if not tol:
        return
    _section(lines, "Acceptance tolerances",
             f"Largest error of each kind that costs at most {_fmt(tol.get('allowed_loss'))} of "
             f"{tol.get('metric', 'the metric')} ({tol.get('trials', '?')} trials per point).")
    lines += _table(["error", "unit", "max magnitude", "source"], [
        [r.get("error"), r.get("unit"), _fmt(r.get("max_magnitude")), r.get("source", "—")] for r in tol.get("rows", [])
    ])


def _warnings_section(lines: list[str], sheet: dict) -> None:
    warnings = (sheet.get("extra") or {}).get("warnings")
    _section(lines, "Warnings raised during export")
    if warnings is None:
        lines.append("(not recorded)")
    elif not warnings:
        lines.append("None.")
    else:
        lines += [f"- {_cell(w)}" for w in warnings]


#: ``extra`` entries rendered in their own sections (the rest go to "Other").
_RENDERED = ("layer_map", "simulation", "printer", "printjob", "stack", "gwl", "snapping", "warnings", "tolerance",
             "printability", "grayscale", "gds", "oas", "png", "tiff", "png8", "bmp", "conventions")


def render_fab_sheet_md(sheet: dict) -> str:
    """Human-readable Markdown version of a sheet made by :func:`build_fab_sheet` (self-sufficient)."""
    mat, geo = sheet["material"], sheet["geometry"]
    side_um = geo["layer_size_m"] * 1e6
    lines = [f"# Fabrication sheet ({sheet['software']})", "",
             "Everything needed to print and check these files; fab_sheet.json holds the same in machine-readable "
             "form (SI units)."]
    _section(lines, "Conventions")
    _kv(lines, [[k, v] for k, v in (sheet.get("conventions") or conventions(sheet)).items()])
    _section(lines, "Material and optics")
    _kv(lines, [
        ["material", mat["name"]],
        ["refractive index n at λ0", f"{mat['n']:.5f}" + (" (nominal: measure it)" if mat["nominal"] else "")],
        ["index source", mat["source"] or "—"],
        ["design wavelength λ0", f"{sheet['wavelength_m'] * 1e9:.2f} nm"],
        ["medium index n_med", f"{sheet['n_medium']:.5f}"],
        ["index contrast Δn", f"{sheet['delta_n']:.5f}"],
        ["height of a 2π step", _um(sheet["height_2pi_m"])],
        ["base slab", _um(sheet["base_m"])],
        ["printer z-step", _um(sheet["z_step_m"])],
    ])
    _section(lines, "Geometry")
    _kv(lines, [
        ["neuron pitch", _um(geo["pitch_m"])],
        ["layer size", f"{geo['neurons']} × {geo['neurons']} neurons = {side_um:.3f} µm × {side_um:.3f} µm"],
        ["layers (masks)", geo["layers"]],
        ["input plane → mask 1", _um(geo["d_in_m"], 3)],
        ["mask → next mask (optical spacing, top of base to top of base)", _um(geo["spacing_m"], 3)],
        ["last mask → detector", _um(geo["d_out_m"], 3)],
    ])
    _optical_path(lines, sheet)
    _section(lines, "Level table", "Heights are above the top of the base slab; printed height = base + snapped "
             "height (from the substrate).")
    lines += _table(
        ["k", "phase (rad)", "height (µm)", "snapped height (µm)", "printed height (µm)", "phase error (rad)",
         "z-steps"],
        [[r["k"], f"{r['phase_rad']:.4f}", f"{r['height_um']:.4f}", f"{r['snapped_height_um']:.4f}",
          f"{r['total_height_um']:.4f}", f"{r['phase_error_rad']:+.4f}",
          "—" if r["z_steps"] is None else r["z_steps"]] for r in sheet["levels"]],
    )
    _snapping_section(lines, sheet)
    _printer_section(lines, sheet)
    _printjob_section(lines, sheet)
    _stack_section(lines, sheet)
    _marks_section(lines, sheet)
    _grayscale_section(lines, sheet)
    _gwl_section(lines, sheet)
    _printability_section(lines, sheet)
    _tolerance_section(lines, sheet)
    _warnings_section(lines, sheet)
    lines += ["", "## Files", ""]
    if sheet["files"]:
        lines += _table(["file", "size (bytes)", "SHA-256"],
                        [[f["name"], f"{f['bytes']:,}", f["sha256"]] for f in sheet["files"]])
    else:
        lines.append("(none)")
    lines += ["", "## Simulation fidelity", ""]
    sim = sheet["extra"].get("simulation") or {}
    if sim:
        lines += _table(["quantity", "value"], [
            ["mask model the design was trained with", sim.get("mask_model", "?")],
            ["oversampling s (simulation pixels per neuron side)", sim.get("oversample", "?")],
            ["sampling rule (s ≥ ceil(2·p·n_med/λ0))", f"s ≥ {sim.get('rule_oversample', '?')}: "
             + ("met" if sim.get("meets_rule") else "NOT MET — the design was simulated under-sampled")],
            ["relief conventions", sim.get("conventions", "—")],
        ])
    else:
        lines.append("(not recorded)")
    lines += ["", "## File checks", ""]
    if sheet["checks"]:
        lines += _table(["check", "result"], [
            [name, "passed" if v is True else "FAILED" if v is False else v] for name, v in sheet["checks"].items()
        ])
    else:
        lines.append("(no checks run)")
    lines += ["", "## Printed-object verification", ""]
    ver = sheet.get("verification")
    if not ver:
        lines.append("Not run yet: `quaton-fab verify DESIGN_DIR EXPORT_DIR` re-simulates the files as the printed "
                     "object and records the result here.")
    else:
        lines += _table(["quantity", "value"], [
            ["metric", f"{ver['metric']} on {ver['samples']} test samples"],
            ["design (training model)", f"{ver['design_metric']:.4f} ({ver['design_fidelity']})"],
            ["design as printed object (reference model)", f"{ver['reference_design_metric']:.4f}"],
            ["files as printed object (worst file)", f"{ver['files_metric']:.4f} ({ver['reference_fidelity']})"],
            ["gap (a) files vs design", f"{ver['gap_files']:+.4f}"],
            ["gap (b) reference model vs training model", f"{ver['gap_model']:+.4f}"],
            ["total gap (tolerance)", f"{ver['total_gap']:+.4f} (−{ver['tolerance']:.4f})"],
            *_probe_rows(ver.get("probe")),
            ["result", "PASSED" if ver["passed"] else "FAILED: " + "; ".join(ver.get("problems", []))],
        ])
    lines += _tolerance_md(sheet.get("tolerance"))
    lines += _crosscheck_md(sheet.get("crosscheck"))
    lines += ["", _summary_line(sheet)]
    other = {k: v for k, v in sheet["extra"].items() if k not in _RENDERED}
    if other:
        lines += ["", "## Other", ""]
        lines += _table(["item", "value"], [
            [k, v if isinstance(v, (str, int, float)) else f"see fab_sheet.json → extra.{k}"] for k, v in other.items()
        ])
    return "\n".join(lines) + "\n"


def _probe_rows(probe: Mapping[str, object] | None) -> list[list[str]]:
    """The convergence probe of a verification as table rows (one "not run" row when there was none)."""
    if not probe:
        return [["convergence probe", "not run"]]
    ref, fine = probe["reference_fidelity"], probe["probe_fidelity"]

    def where(fid: Mapping[str, object]) -> str:
        dz = fid.get("max_slice_m")
        return f"s={fid['oversample']}" + ("" if dz is None else f", slices ≤ {float(dz) * 1e9:.4g} nm")

    return [[
        f"convergence probe ({probe['samples']} test samples)",
        f"{probe['reference_metric']:.4f} at {where(ref)} vs {probe['probe_metric']:.4f} at {where(fine)}: "
        f"{probe['difference']:+.4f}, " + ("converged" if probe["converged"] else "NOT CONVERGED"),
    ]]


def _tolerance_md(tol: Mapping[str, object] | None) -> list[str]:
    """The acceptance tolerances recorded by ``quaton-fab tolerance`` (empty when none)."""
    if not tol:
        return []
    lines = ["", "## Fabrication tolerances", "",
             f"Largest error magnitude (σ of the random draw; blur: the Gaussian σ) keeping the {tol['metric']} within "
             f"{tol['allowed_loss']} of the nominal print: {tol['trials']} trials on {tol['samples']} test samples, "
             f"seed {tol['seed']}, fidelity {tol['fidelity']}.", ""]
    lines += _table(["error", "largest magnitude", "source"], [
        [r["error"], "below the smallest swept" if r["max_magnitude"] is None
         else f"{r['max_magnitude']:g} {r['unit']}", r["source"]] for r in tol["rows"]
    ])
    return lines


def record_tolerance(export_dir: str | os.PathLike, tolerance: Mapping[str, object]) -> dict[str, Path]:
    """Store acceptance tolerances (``analysis.tolerance.tolerance_sheet_entry``) in the export's fab sheet."""
    sheet = read_fab_sheet(export_dir)
    sheet["tolerance"] = dict(tolerance)
    return write_fab_sheet(export_dir, sheet)


def _crosscheck_md(cc: Mapping[str, object] | None) -> list[str]:
    """The scalar models against the rigorous solver, recorded by ``quaton-fab crosscheck`` (empty when none)."""
    if not cc:
        return []
    lines = ["", "## Model error vs rigorous solver", "",
             f"`{cc['command']}`: {cc['solver']}, {cc['patches']} patches of {cc['patch_pixels']}×{cc['patch_pixels']} "
             f"pixels, M = {cc['harmonics']}. Errors over the propagating transmitted orders, mean / worst patch.", ""]
    lines += _table(["model", "polarisation", "L1 of efficiencies", "complex order error"], [
        [r["model"], r["polarisation"], f"{r['l1_mean']:.3f} / {r['l1_worst']:.3f}",
         f"{r['complex_mean']:.3f} / {r['complex_worst']:.3f}"] for r in cc["rows"]
    ])
    lines += ["", str(cc["note"]), "", f"Figure: `{cc['figure']}`."]
    return lines


def record_crosscheck(export_dir: str | os.PathLike, entry: Mapping[str, object]) -> dict[str, Path]:
    """Store a rigorous cross-check (``quaton_fab.analysis.crosscheck.sheet_entry``) in the export's fab sheet."""
    sheet = read_fab_sheet(export_dir)
    sheet["crosscheck"] = dict(entry)
    return write_fab_sheet(export_dir, sheet)


def _summary_line(sheet: dict) -> str:
    """One honest closing line: never 'all checks passed' unless the printed-object verification passed too."""
    failed = list(sheet.get("checks_failed", []))
    ver = sheet.get("verification")
    if ver and not ver.get("passed"):
        failed.append(f"printed-object verification (gap {ver['total_gap']:+.4f} {ver['metric']}"
                      + (", reference not converged)" if ver.get("converged") is False else ")"))
    if failed:
        return f"FAILED: {', '.join(failed)}."
    if not ver:
        return "File checks passed; printed-object verification not run yet."
    return "All checks passed, printed-object verification included."


def record_verification(export_dir: str | os.PathLike, verification: Mapping[str, object]) -> dict[str, Path]:
    """Store a verification result (``VerifyReport.to_sheet()``) in the export's fab sheet (JSON and Markdown).

    ``all_checks_passed`` becomes False when the verification failed.
    """
    sheet = read_fab_sheet(export_dir)
    sheet["verification"] = dict(verification)
    sheet["all_checks_passed"] = not sheet.get("checks_failed") and bool(verification.get("passed"))
    return write_fab_sheet(export_dir, sheet)


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary name next to ``path``, then move it into place."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_fab_sheet(out_dir: str | os.PathLike, sheet: dict) -> dict[str, Path]:
    """Write ``fab_sheet.json`` and ``fab_sheet.md`` into ``out_dir`` (created if missing).

    Returns:
        {"json": path, "md": path}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(sheet, indent=2, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise SheetError(f"fab sheet is not JSON-serialisable: {exc}") from None
    refresh_report(out, sheet)  # the report shows what the sheet now holds; its listed size and hash follow
    sheet[SHEET_HASH_KEY] = sheet_digest(sheet)  # verify checks the sheet against it
    text = json.dumps(sheet, indent=2, allow_nan=False, default=_json_default)
    paths = {"json": out / JSON_NAME, "md": out / MD_NAME}
    _atomic_write_text(paths["md"], render_fab_sheet_md(sheet))
    _atomic_write_text(paths["json"], text + "\n")  # last: fab_sheet.json marks a complete export
    logger.info("fab sheet written to %s", out)
    return paths


def read_fab_sheet(path: str | os.PathLike) -> dict:
    """Load ``fab_sheet.json`` (a file, or a folder holding it) and check its schema."""
    p = Path(path)
    if p.is_dir():
        p = p / JSON_NAME
    if p.is_symlink():  # the sheet decides what verify reads and where results are recorded: never a link
        raise SheetError(f"{str(p)!r} is a symbolic link; a fab sheet must be a plain file in the export folder")
    try:
        sheet = load_json_file(p, "fab sheet", SheetError)
    except FileNotFoundError:
        raise SheetError(f"no fab sheet at {str(p)!r}") from None
    if not isinstance(sheet, dict):
        raise SheetError(f"{p}: a fab sheet is a JSON object, not {type(sheet).__name__}")
    if sheet.get("schema") != SHEET_SCHEMA:
        raise SheetError(f"{p}: schema {sheet.get('schema')!r} is not {SHEET_SCHEMA!r}")
    return sheet
