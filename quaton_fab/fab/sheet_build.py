"""Building the fab sheet dict: material, geometry, level table, files, checks and the frame conventions."""

from __future__ import annotations

import os
from typing import Iterable, Mapping

import numpy as np

from quaton_fab._version import __version__
from quaton_fab.fab.sheet_schema import SHEET_SCHEMA, SHEET_VERSION, SheetError, file_entry
from quaton_fab.printing.level_table import LevelTable
from quaton_fab.validate import count, length_m


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


def _geometry(pitch_m: float, neurons: int, layers: int, spacing_m: float, d_in_m: float, d_out_m: float) -> dict:
    """The sheet's geometry entry (lengths in m), each value checked."""
    pitch = length_m(pitch_m, "pitch", error=SheetError)
    n_side = count(neurons, "neurons", error=SheetError)
    n_layers = count(layers, "layers", error=SheetError)
    return {
        "pitch_m": pitch,
        "neurons": n_side,
        "layers": n_layers,
        "layer_size_m": pitch * n_side,
        "d_in_m": length_m(d_in_m, "d_in", allow_zero=True, error=SheetError),
        "spacing_m": length_m(spacing_m, "spacing", allow_zero=True, error=SheetError),
        "d_out_m": length_m(d_out_m, "d_out", allow_zero=True, error=SheetError),
    }


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
    geometry = _geometry(pitch_m, neurons, layers, spacing_m, d_in_m, d_out_m)
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


def pixel_square_um(row: int, col: int, neurons: int, pitch_m: float) -> list[float]:
    """[x0, y0, x1, y1] (µm) of pixel (row, col) in STL and GDS: x = col·p, y = (N − 1 − row)·p (origin lower-left)."""
    p_um = pitch_m * 1e6
    return [col * p_um, (neurons - 1 - row) * p_um, (col + 1) * p_um, (neurons - row) * p_um]


def conventions(sheet: dict) -> dict[str, str]:
    """The frame conventions of every exported file, in words, with the numbers of this export.

    What each statement rests on: ``fab/formats/stl_mesh.py`` and ``fab/formats/gds_write.py`` (pixel
    (row i, col j) covers x ∈ [j·p, (j+1)·p], y ∈ [(N−1−i)·p, (N−i)·p]; STL z = build direction, base from
    z = 0), ``fab/formats/heightmap.py`` (array row 0 is the image's top row) and ``optics/relief_geometry.py``
    (base-first: light enters through the base slab). ``tests/test_sheet_conventions.py`` checks these
    statements against the files.
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
