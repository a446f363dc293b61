"""``fab_sheet.md``: the human-readable rendering of a fab sheet (µm/nm), self-sufficient."""

from __future__ import annotations

from typing import Mapping

from quaton_fab.fab.formats.registry import sheet_sections
from quaton_fab.fab.sheet_build import conventions
from quaton_fab.fab.sheet_md_parts import (
    _gwl_section,
    _grayscale_section,
    _kv,
    _marks_section,
    _optical_path,
    _printability_section,
    _printer_section,
    _printjob_section,
    _section,
    _snapping_section,
    _stack_section,
    _table,
    _tolerance_section,
    _um,
    _warnings_section,
)


#: ``extra`` entries rendered in their own sections (the rest go to "Other"): the export's common sections and
#: those the format specs fill (:func:`quaton_fab.fab.formats.registry.sheet_sections`).
_RENDERED = ("simulation", "printer", "printjob", "snapping", "warnings", "tolerance", "printability", "conventions",
             *sheet_sections())


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
    _level_table_section(lines, sheet)
    _extra_sections(lines, sheet)
    _files_and_checks(lines, sheet)
    _verification_md(lines, sheet)
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


def _level_table_section(lines: list[str], sheet: dict) -> None:
    _section(lines, "Level table", "Heights are above the top of the base slab; printed height = base + snapped "
             "height (from the substrate).")
    lines += _table(
        ["k", "phase (rad)", "height (µm)", "snapped height (µm)", "printed height (µm)", "phase error (rad)",
         "z-steps"],
        [[r["k"], f"{r['phase_rad']:.4f}", f"{r['height_um']:.4f}", f"{r['snapped_height_um']:.4f}",
          f"{r['total_height_um']:.4f}", f"{r['phase_error_rad']:+.4f}",
          "—" if r["z_steps"] is None else r["z_steps"]] for r in sheet["levels"]],
    )


def _extra_sections(lines: list[str], sheet: dict) -> None:
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


def _files_and_checks(lines: list[str], sheet: dict) -> None:
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


def _verification_md(lines: list[str], sheet: dict) -> None:
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


def _probe_rows(probe: Mapping[str, object] | None) -> list[list[str]]:
    """The convergence probe of a verification as table rows (one "not run" row when there was none)."""
    if not probe:
        return [["convergence probe", "not run"]]
    ref, fine = probe["reference_fidelity"], probe["probe_fidelity"]

    def where(fid: Mapping[str, object]) -> str:
        dz = fid.get("max_slice_m")
        return f"s={fid['oversample']}" + ("" if dz is None else f", slices ≤ {float(dz) * 1e9:.4g} nm")

    verdict = probe.get("verdict") or ("converged" if probe["converged"] else "not converged")
    interval = probe.get("interval_95")
    spread = "" if not interval else f" ± {(float(interval[1]) - float(interval[0])) / 2:.4f} (95 %)"
    population = probe.get("population")
    label = f"convergence probe ({probe['samples']} test samples" + (
        f" of {population})" if population and population != probe["samples"] else ")")
    return [[
        label,
        f"{probe['reference_metric']:.4f} at {where(ref)} vs {probe['probe_metric']:.4f} at {where(fine)}: "
        f"{probe['difference']:+.4f}{spread}, " + (verdict.upper() if verdict != "converged" else verdict),
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
    if (ver.get("probe") or {}).get("verdict") == "undecided":
        return ("All checks passed, printed-object verification included; the reference's convergence is undecided "
                "(the probe's 95 % interval straddles the tolerance: a larger probe decides).")
    return "All checks passed, printed-object verification included."
