"""A sweep's report: mean ± std over seeds per method × levels × task, figures, markdown and a JSON twin.

One idea: summarising finished cells. Cells are grouped by every varied option except ``seed``; each group's
metric is reported at every fidelity the cells were evaluated at (``reference`` = the printed object, the
number that counts; ``training`` = the design's own training model; ``training_unquantized`` = FP before
quantization). Standard deviations are sample standard deviations (ddof = 1) over seeds; a group of one seed
shows no ±.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from quaton_fab.fileio import commit_set
from quaton_fab.simulate import REFERENCE_SLICE_FRACTION
from quaton_fab.sweep.report_figures import write_figures
from quaton_fab.sweep.report_html import render_sweep_page
from quaton_fab.sweep.report_summary import (
    FIDELITY_NAMES,
    FIDELITY_ORDER,
    METHOD_ORDER,
    Stat,
    _fmt,
    _method_key,
    _unit,
    param_text,
    ranking,
    summarize,
)
from quaton_fab.sweep.runner import SweepError, load_records

__all__ = [
    "FIDELITY_NAMES",
    "FIDELITY_ORDER",
    "METHOD_ORDER",
    "Stat",
    "flat_table",
    "param_text",
    "pivot_table",
    "ranking",
    "render_markdown",
    "summarize",
    "write_figures",
    "write_report",
]


def pivot_table(grid: dict[str, Any], fidelity: str) -> list[str] | None:
    """Markdown table methods × level counts at one fidelity (None if the grid is not method × levels)."""
    if set(grid["group_by"]) - {"method", "levels"} or "method" not in grid["group_by"]:
        return None
    primary = grid["primary"]
    rows = [r for r in grid["rows"] if r["params"]["method"] != "fp"]  # FP is not printable: reported apart
    levels = sorted({r["params"].get("levels") for r in rows}, key=lambda x: (x is None, x))
    methods = sorted({r["params"]["method"] for r in rows}, key=_method_key)
    cells = {(r["params"]["method"], r["params"].get("levels")): r for r in grid["rows"]}
    header = ["method"] + [f"{lv} levels" if lv is not None else "–" for lv in levels]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in methods:
        row = [m.upper()]
        for lv in levels:
            r = cells.get((m, lv))
            row.append(_fmt(r["metrics"].get(fidelity) if r else None, primary))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def flat_table(grid: dict[str, Any]) -> list[str]:
    """Markdown table of every group with every fidelity."""
    primary = grid["primary"]
    fids = [f for f in FIDELITY_ORDER if any(f in r["metrics"] for r in grid["rows"])]
    header = grid["group_by"] + ["seeds"] + [FIDELITY_NAMES[f] for f in fids] + ["train time (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in grid["rows"]:
        row = [str(r["params"][k]) for k in grid["group_by"]] + [str(r["n"])]
        row += [_fmt(r["metrics"].get(f), primary) for f in fids]
        row.append("–" if r["train_time_s"] is None else f"{r['train_time_s']:.0f}")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def render_markdown(
    meta: dict[str, Any], summary: dict[str, Any], figures: dict[str, list[Path]], md_path: Path,
    *, notes: str | None = None, spec_path: str | None = None, command: str | None = None,
) -> str:
    """The report as markdown (figure links relative to ``md_path``)."""
    n_cells = len(meta.get("cells", []))
    lines = [f"# {meta.get('name', 'sweep')}: results", ""]
    lines += [
        f"{summary['done']} of {n_cells} cells finished"
        + (f", {len(summary['failed'])} failed or interrupted" if summary["failed"] else "") + ". "
        "Each entry is the mean ± sample standard deviation over seeds. The printed-object metric (reference "
        "fidelity: the sampling rule taken inside the relief material, s ≥ ⌈2·p·n_mat/λ0⌉, and the relief sliced "
        f"at λ0/{round(1 / REFERENCE_SLICE_FRACTION)} or finer; each cell's cell.json records its exact sampling, "
        "slicing and indices) is the one that counts; the training-model metric is the design's own model, and "
        "the gap is reference − training per cell.",
        "",
    ]
    if command:
        lines += ["Reproduce:", "", "```", command, "```", ""]
    if notes:
        lines += [notes.strip(), ""]
    for label, grid in summary["grids"].items():
        primary = grid["primary"]
        lines += [f"## {label}", "", f"Metric: {_unit(primary)}.", ""]
        piv = pivot_table(grid, "reference") if any("reference" in r["metrics"] for r in grid["rows"]) else None
        if piv:
            lines += [f"**{FIDELITY_NAMES['reference']}**", ""] + piv + [""]
            piv_t = pivot_table(grid, "training")
            if piv_t:
                lines += [f"**{FIDELITY_NAMES['training']}**", ""] + piv_t + [""]
            piv_g = pivot_table(grid, "gap")
            if piv_g and any("gap" in r["metrics"] for r in grid["rows"]):
                lines += [f"**{FIDELITY_NAMES['gap']}**", ""] + piv_g + [""]
            fp = [r for r in grid["rows"] if r["params"].get("method") == "fp"
                  and "training_unquantized" in r["metrics"]]
            if fp:
                lines += ["FP (full precision, not printable; trained through a continuous relief), in its "
                          "training model before quantization: " + "; ".join(
                              _fmt(r["metrics"]["training_unquantized"], primary) for r in fp) + ". PQ is FP "
                          "training snapped to n levels.", ""]
            rank = ranking(grid)
            if rank:
                lines += ["Method ranking at the printed-object fidelity (mean rank over level counts, FP "
                          "excluded; wins = level counts where the method is best): "
                          + ", ".join(f"{m.upper()} {r:.2f} ({w} wins)" for m, r, w in rank) + ".", ""]
        else:
            lines += flat_table(grid) + [""]
        for p in figures.get(label, []):
            rel = os.path.relpath(p, md_path.parent)
            lines += [f"![{label}]({rel})", ""]
    if summary["failed"]:
        lines += ["## Cells not finished", ""]
        lines += [f"- `{f['key']}`: {f['status']}: {f['error']}" for f in summary["failed"]] + [""]
    lines += ["## Spec", ""]
    if spec_path:
        lines += [f"From `{spec_path}`:", ""]
    lines += ["```toml", meta.get("spec_text", "").rstrip(), "```", ""]
    return "\n".join(lines)


def write_report(
    sweep_dir: str | Path,
    out_md: str | Path | None = None,
    *,
    notes: str | None = None,
    spec_path: str | None = None,
    command: str | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Write ``report.md`` (or ``out_md``), its JSON twin (same name, ``.json``), the study page (same name,
    ``.html``, self-contained) and figures beside it.

    Figures go to ``<md stem>_figures/``. Returns ``{"md", "json", "html", "figures": [...]}`` paths. The set is written
    under temporary names beside the report and moved into place together (:func:`~quaton_fab.fileio.
    commit_set`): a failure leaves the previous report, and no temporary file or figure, behind. Existing
    files are replaced only with ``force``.
    """
    meta, records = load_records(sweep_dir)
    summary = summarize(records)
    md_path = Path(out_md) if out_md is not None else Path(sweep_dir) / "report.md"
    fig_dir = md_path.with_name(md_path.stem + "_figures")
    json_path = md_path.with_suffix(".json")
    if md_path.suffix.lower() == ".json":
        raise SweepError(f"--out {str(md_path)!r}: name a markdown file; its JSON twin is written beside it")
    html_path = md_path.with_suffix(".html")
    _check_targets(((md_path, "file"), (json_path, "file"), (html_path, "file"), (fig_dir, "folder")), force)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{md_path.stem}.report-", dir=md_path.parent))
    try:
        staged = write_figures(summary, stage / fig_dir.name)
        figures = {k: [fig_dir / p.name for p in v] for k, v in staged.items()}
        text = render_markdown(meta, summary, figures, md_path, notes=notes, spec_path=spec_path,
                               command=command)
        twin = _json_twin(meta, summary, figures, md_path)
        page = render_sweep_page(meta, summary, {label: ranking(g) for label, g in summary["grids"].items()},
                                 sweep_dir, html_path, fid_names=FIDELITY_NAMES, fid_order=FIDELITY_ORDER,
                                 command=command)
        pairs = []
        for path, content in ((html_path, page), (json_path, json.dumps(_finite(twin), indent=2, default=_nan_safe,
                                                    allow_nan=False) + "\n"), (md_path, text)):
            (stage / path.name).write_text(content, encoding="utf-8")
            pairs.append((stage / path.name, path))
        if staged:
            pairs.insert(0, (stage / fig_dir.name, fig_dir))
        elif fig_dir.is_dir():  # a previous report's figures that this report no longer has
            pairs.insert(0, (Path(tempfile.mkdtemp(dir=stage)), fig_dir))
        commit_set(pairs)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return {"md": md_path, "json": json_path, "html": html_path,
            "figures": [p for v in figures.values() for p in v]}


def _check_targets(targets: tuple[tuple[Path, str], ...], force: bool) -> None:
    """Refuse to write the report over links, things in the way, existing files (without ``force``) or a figure
    folder holding files the report did not write. ``targets``: ``(path, "file" | "folder")``."""
    for path, kind in targets:
        if path.is_symlink():
            raise SweepError(f"{str(path)!r} is a symbolic link; the report does not write through links")
        if path.exists() and (path.is_dir() != (kind == "folder")):
            raise SweepError(f"{str(path)!r} is in the way (not a {kind})")
        if path.exists() and not force:
            raise SweepError(f"{str(path)!r} already exists; use --force to replace the report, or another --out")
        if kind == "folder" and path.is_dir() and any(not p.name.endswith(".png") or not p.is_file()
                                                      for p in path.iterdir()):
            raise SweepError(f"{str(path)!r} holds files the report did not write; refusing to replace it")


def _json_twin(meta: dict[str, Any], summary: dict[str, Any], figures: dict[str, list[Path]],
               md_path: Path) -> dict[str, Any]:
    """The report's JSON twin: the summary, the rankings, figure paths relative to the report, the spec text."""
    return {
        "schema": "quaton-fab/sweep-report", "version": 1, "name": meta.get("name"),
        "cells": len(meta.get("cells", [])), **summary,
        "ranking": {label: [{"method": m, "mean_rank": r, "wins": w} for m, r, w in ranking(g)]
                    for label, g in summary["grids"].items()},
        "figures": {k: [os.path.relpath(p, md_path.parent) for p in v] for k, v in figures.items()},
        "spec_text": meta.get("spec_text", ""),
    }


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _nan_safe(obj: object) -> object:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)
