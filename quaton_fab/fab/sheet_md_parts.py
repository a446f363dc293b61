"""Markdown pieces of ``fab_sheet.md``: table helpers and the sections drawn from the sheet's ``extra`` entries."""

from __future__ import annotations

import json

from quaton_fab.printing.printer import PrinterError, get_profile


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
