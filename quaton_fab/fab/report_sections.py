"""The HTML sections of the design report, each rendered from the fab sheet (and the page's data block)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping

from quaton_fab.fab.report_data import REPORT_NAME, ASPECT_WARN
from quaton_fab.fab.sheet_names import JSON_NAME, MD_NAME
from quaton_fab.html_page import esc, image_data_uri, num
from quaton_fab.tasks.metrics import HEADLINE_ORDER, metric_spec, metric_title


def not_run(what: str, command: str) -> str:
    """The placeholder of a section whose command has not been run on this export."""
    return (f'<p class="notrun" data-notrun="{esc(what)}">{esc(what)}: not run yet — command: '
            f"<code>{esc(command)}</code></p>")


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
                 f"{JSON_NAME}"])
    rows.append([f'<span class="mono">{JSON_NAME}</span>, <span class="mono">{MD_NAME}</span>', "—",
                 f"the sheet these numbers come from ({JSON_NAME} holds its own SHA-256)"])
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
