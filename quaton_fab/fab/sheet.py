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
from typing import Iterable, Mapping

import numpy as np

from quaton_fab.fileio import atomic_write_bytes
from quaton_fab.validate import count, length_m
from quaton_fab.fab.errors import FabError
from quaton_fab._version import __version__
from quaton_fab.fab.heights import LevelTable

logger = logging.getLogger(__name__)

SHEET_SCHEMA = "quaton-fab/fab-sheet"
SHEET_VERSION = 1
JSON_NAME = "fab_sheet.json"
MD_NAME = "fab_sheet.md"


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
    return {
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


def _json_default(obj: object) -> object:
    """JSON fallback for numpy scalars/arrays and paths found in ``extra``."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"value of type {type(obj).__name__} is not JSON-serialisable")


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


def render_fab_sheet_md(sheet: dict) -> str:
    """Human-readable Markdown version of a sheet made by :func:`build_fab_sheet`."""
    mat, geo = sheet["material"], sheet["geometry"]
    side_um = geo["layer_size_m"] * 1e6
    lines = [f"# Fabrication sheet ({sheet['software']})", "", "## Material and optics", ""]
    lines += _table(["quantity", "value"], [
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
    lines += ["", "## Geometry", ""]
    lines += _table(["quantity", "value"], [
        ["neuron pitch", _um(geo["pitch_m"])],
        ["layer size", f"{geo['neurons']} × {geo['neurons']} neurons = {side_um:.3f} µm × {side_um:.3f} µm"],
        ["layers (masks)", geo["layers"]],
        ["input plane → mask 1", _um(geo["d_in_m"], 3)],
        ["mask → next mask", _um(geo["spacing_m"], 3)],
        ["last mask → detector", _um(geo["d_out_m"], 3)],
    ])
    lines += ["", "## Level table", "",
              "Heights are above the top of the base slab; printed height = base + snapped height.", ""]
    lines += _table(
        ["k", "phase (rad)", "height (µm)", "snapped height (µm)", "printed height (µm)", "phase error (rad)",
         "z-steps"],
        [[r["k"], f"{r['phase_rad']:.4f}", f"{r['height_um']:.4f}", f"{r['snapped_height_um']:.4f}",
          f"{r['total_height_um']:.4f}", f"{r['phase_error_rad']:+.4f}",
          "—" if r["z_steps"] is None else r["z_steps"]] for r in sheet["levels"]],
    )
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
            ["result", "PASSED" if ver["passed"] else "FAILED: " + "; ".join(ver.get("problems", []))],
        ])
    lines += _tolerance_md(sheet.get("tolerance"))
    lines += ["", _summary_line(sheet)]
    layer_map = sheet["extra"].get("layer_map")
    if layer_map:
        lines += ["", "## GDSII / OASIS layers", "",
                  "One layer per level (datatype 0); heights above the base slab.", ""]
        lines += _table(["level", "layer/datatype", "name", "height (µm)", "drawn", "rectangles", "area (µm²)"], [
            [row["level"], f"{row['layer']}/{row['datatype']}", row.get("name", ""), f"{row['height_um']:.4f}",
             "yes" if row.get("drawn", True) else "omitted (= bare base)", row.get("polygons", ""),
             f"{row.get('area_um2', 0):.1f}"]
            for row in layer_map
        ])
    other = {k: v for k, v in sheet["extra"].items() if k not in ("layer_map", "simulation")}
    if other:
        lines += ["", "## Other", ""]
        lines += _table(["item", "value"], [
            [k, v if isinstance(v, (str, int, float)) else f"see fab_sheet.json → extra.{k}"] for k, v in other.items()
        ])
    return "\n".join(lines) + "\n"


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
    """Store acceptance tolerances (``quaton_fab.tolerance.tolerance_sheet_entry``) in the export's fab sheet."""
    sheet = read_fab_sheet(export_dir)
    sheet["tolerance"] = dict(tolerance)
    return write_fab_sheet(export_dir, sheet)


def _summary_line(sheet: dict) -> str:
    """One honest closing line: never 'all checks passed' unless the printed-object verification passed too."""
    failed = list(sheet.get("checks_failed", []))
    ver = sheet.get("verification")
    if ver and not ver.get("passed"):
        failed.append(f"printed-object verification (gap {ver['total_gap']:+.4f} {ver['metric']})")
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
    from quaton_fab.fab.sheet_check import SHEET_HASH_KEY, sheet_digest

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
    try:
        sheet = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SheetError(f"no fab sheet at {str(p)!r}") from None
    except json.JSONDecodeError as exc:
        raise SheetError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if sheet.get("schema") != SHEET_SCHEMA:
        raise SheetError(f"{p}: schema {sheet.get('schema')!r} is not {SHEET_SCHEMA!r}")
    return sheet
