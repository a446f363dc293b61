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
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.confine import plain_name
from quaton_fab.errors import QuatonFabError
from quaton_fab.fileio import commit_set
from quaton_fab.sweep.report_html import render_sweep_page
from quaton_fab.sweep.runner import SweepError, load_records
from quaton_fab.simulate import REFERENCE_SLICE_FRACTION
from quaton_fab.tasks.metrics import metric_axis_label, metric_spec, primary_metric_name

#: Method order of the QuATON study (others follow alphabetically).
METHOD_ORDER = ("fp", "pq", "ste", "gs", "psq", "psq-lt")
#: Fidelity order: the printed object first.
FIDELITY_ORDER = ("reference", "training", "gap", "design", "training_unquantized")
FIDELITY_NAMES = {
    "reference": "printed object (reference)",
    "gap": "design-vs-reference gap (reference − training)",
    "training": "training model",
    "design": "training model (re-simulated)",
    "training_unquantized": "training model, unquantized (FP only)",
}


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation and the values it came from."""

    mean: float
    std: float | None
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        arr = np.asarray(values, dtype=np.float64)
        std = float(arr.std(ddof=1)) if arr.size > 1 else None
        return cls(float(arr.mean()), std, tuple(float(v) for v in arr))

    def text(self, scale: float = 1.0, digits: int = 2) -> str:
        if self.std is None:
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f}"

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": len(self.values), "values": list(self.values)}


def _method_key(m: Any) -> tuple[int, str]:
    s = str(m)
    return (METHOD_ORDER.index(s) if s in METHOD_ORDER else len(METHOD_ORDER), s)


def _sort_key(params: dict[str, Any]) -> tuple:
    out = []
    for k, v in params.items():
        out.append(_method_key(v) if k == "method" else (0, f"{v:020.6f}" if isinstance(v, (int, float)) else str(v)))
    return tuple(out)


def _plain_table(value: Any, depth: int = 0) -> bool:
    """Whether a value is a table (nested at most 4 deep) of text, numbers and booleans."""
    if isinstance(value, dict):
        return depth < 4 and all(isinstance(k, str) and _plain_table(v, depth + 1) for k, v in value.items())
    return value is None or isinstance(value, (str, int, float, bool))


def param_text(value: Any) -> Any:
    """A varied table as one text label ({"psq-lt": {"kappa_lr": 0.03}} → "psq-lt.kappa_lr=0.03"); else as is."""
    if not isinstance(value, dict):
        return value
    parts = []
    for k, v in value.items():
        if isinstance(v, dict):
            inner = param_text(v)
            parts.append(f"{k}.{inner}" if inner else str(k))
        else:
            parts.append(f"{k}={v}")
    return ", ".join(parts)


def _check_record(rec: Any) -> None:
    """Refuse a finished cell record whose fields the report would use are missing or of the wrong type."""
    key = rec.get("key") if isinstance(rec, dict) else None
    where = f"cell record {key!r}"
    cell = rec.get("cell")
    if not isinstance(cell, dict) or not isinstance(cell.get("params"), dict):
        raise SweepError(f"{where}: 'cell' must be an object with 'grid' and 'params'")
    try:
        plain_name(cell.get("grid"), f"{where}: grid")
    except QuatonFabError as exc:
        raise SweepError(str(exc)) from None
    if not isinstance(cell.get("overrides", {}), dict):
        raise SweepError(f"{where}: 'cell.overrides' must be an object")
    for name, value in cell["params"].items():
        if isinstance(value, dict) and _plain_table(value):
            continue  # a varied table (e.g. quantizer = { psq-lt = { kappa_lr = 0.03 } }) tabulates as text
        if isinstance(value, (dict, list)) and name not in ("level_phases_rad", "level_range_rad"):
            raise SweepError(f"{where}: parameter {name!r} = {value!r} is not a plain value")
    levels = cell["params"].get("levels", cell.get("overrides", {}).get("levels"))
    if levels is not None and (isinstance(levels, bool) or not isinstance(levels, int)):
        raise SweepError(f"{where}: levels {levels!r} is not an integer")
    if not isinstance(primary_metric_name(rec), str):
        raise SweepError(f"{where}: 'primary' must be a metric name")
    metrics = rec.get("metrics", {})
    if not isinstance(metrics, dict) or not all(isinstance(m, dict) for m in metrics.values()):
        raise SweepError(f"{where}: 'metrics' must map each fidelity to an object of numbers")
    for fidelity, values in metrics.items():
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SweepError(f"{where}: metric {fidelity}.{name} = {value!r} is not a number")
    time_s = rec.get("train_time_s")
    if time_s is not None and (isinstance(time_s, bool) or not isinstance(time_s, (int, float))):
        raise SweepError(f"{where}: train_time_s {time_s!r} is not a number")


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Group finished cells by grid and varied options (seed excluded); statistics per fidelity.

    Returns:
        ``{"grids": {label: {"primary", "group_by", "rows": [{"params", "seeds", "metrics": {fidelity:
        Stat.to_dict()}, "train_time_s"}]}}, "failed": [{"key", "error"}], "done": n}``.
    """
    grids: dict[str, dict[tuple, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    failed = []
    done = 0
    for rec in records:
        if rec.get("status") != "done":
            failed.append({"key": rec.get("key"), "status": rec.get("status"), "error": rec.get("error")})
            continue
        _check_record(rec)
        done += 1
        params = {k: param_text(v) for k, v in rec["cell"]["params"].items() if k != "seed"}
        fixed_levels = rec["cell"].get("overrides", {}).get("levels")
        if "method" in params and "levels" not in params and fixed_levels is not None:
            params["levels"] = fixed_levels  # a grid at one level count still tabulates as method × levels
        grids[rec["cell"]["grid"]][json.dumps(params, sort_keys=False, default=str)].append(rec)
    out: dict[str, Any] = {"grids": {}, "failed": failed, "done": done}
    for label, groups in grids.items():
        rows = []
        primary = None
        for key, recs in groups.items():
            params = json.loads(key)
            primary = primary_metric_name(recs[0])
            metrics = {}
            for fid in FIDELITY_ORDER:
                if fid == "gap":  # per cell, then over seeds
                    vals = [r["metrics"]["reference"][primary] - r["metrics"]["training"][primary] for r in recs
                            if all(primary in r.get("metrics", {}).get(f, {}) for f in ("reference", "training"))]
                else:
                    vals = [r["metrics"][fid][primary] for r in recs if primary in r.get("metrics", {}).get(fid, {})]
                if vals:
                    metrics[fid] = Stat.of(vals).to_dict()
            times = [r.get("train_time_s") for r in recs if r.get("train_time_s") is not None]
            rows.append({
                "params": params,
                "seeds": sorted(r["cell"]["params"].get("seed") for r in recs if "seed" in r["cell"]["params"]),
                "n": len(recs),
                "metrics": metrics,
                "train_time_s": float(np.mean(times)) if times else None,
                "cells": sorted(r["key"] for r in recs if r.get("key")),  # <grid>/<cell folder>
            })
        rows.sort(key=lambda r: _sort_key(r["params"]))
        group_by = list(rows[0]["params"]) if rows else []
        out["grids"][label] = {"primary": primary, "group_by": group_by, "rows": rows}
    return out


def _fmt(stat: dict[str, Any] | None, primary: str) -> str:
    if not stat:
        return "–"
    s = Stat(stat["mean"], stat["std"], tuple(stat["values"]))
    spec = metric_spec(primary)
    return s.text(spec.scale, spec.digits)


def _unit(primary: str) -> str:
    return metric_axis_label(primary)


def ranking(grid: dict[str, Any], fidelity: str = "reference") -> list[tuple[str, float, int]]:
    """Mean rank of each method over the level counts of a grid (1 = best): [(method, mean rank, wins)].

    Only level counts where every ranked method has a result count; FP is left out (it is not printable).
    """
    rows = [r for r in grid["rows"] if "method" in r["params"] and fidelity in r["metrics"]
            and r["params"]["method"] != "fp"]
    by_levels: dict[Any, dict[str, float]] = defaultdict(dict)
    for r in rows:
        by_levels[r["params"].get("levels")][r["params"]["method"]] = r["metrics"][fidelity]["mean"]
    methods = sorted({m for d in by_levels.values() for m in d}, key=_method_key)
    complete = [d for d in by_levels.values() if set(d) == set(methods)]
    if not complete:
        return []
    ranks: dict[str, list[int]] = defaultdict(list)
    wins: dict[str, int] = defaultdict(int)
    for d in complete:
        order = sorted(d, key=lambda m: -d[m])
        for i, m in enumerate(order):
            ranks[m].append(i + 1)
        wins[order[0]] += 1
    return sorted(((m, float(np.mean(ranks[m])), wins[m]) for m in methods), key=lambda t: t[1])


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


def write_figures(summary: dict[str, Any], fig_dir: Path, fidelity: str = "reference") -> dict[str, list[Path]]:
    """Per grid: metric vs level count per method (mean ± std) and the method ranking. Returns paths per grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    for label, grid in summary["grids"].items():
        paths: list[Path] = []
        rows = [r for r in grid["rows"] if "method" in r["params"] and "levels" in r["params"]
                and fidelity in r["metrics"]]
        if not rows or set(grid["group_by"]) - {"method", "levels"}:
            continue
        scale = metric_spec(grid["primary"]).scale
        if len({r["params"]["levels"] for r in rows if r["params"]["method"] != "fp"}) < 2:
            rank = ranking(grid, fidelity)
            if rank:
                written[label] = [_ranking_figure(plt, label, rank, fidelity, fig_dir)]
            continue
        fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=120)
        for m in sorted({r["params"]["method"] for r in rows}, key=_method_key):
            if m == "fp":  # not printable: its unquantized training-model metric as a reference line
                fp = [r["metrics"]["training_unquantized"] for r in rows
                      if r["params"]["method"] == "fp" and "training_unquantized" in r["metrics"]]
                if fp:
                    ax.axhline(fp[0]["mean"] * scale, ls="--", lw=1, color="0.4",
                               label="FP, unquantized (training model)")
                continue
            pts = sorted((r["params"]["levels"], r["metrics"][fidelity]) for r in rows if r["params"]["method"] == m)
            x = [p[0] for p in pts]
            y = [p[1]["mean"] * scale for p in pts]
            e = [(p[1]["std"] or 0.0) * scale for p in pts]
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=m.upper())
        ax.set_xscale("log", base=2)
        levels = sorted({r["params"]["levels"] for r in rows if r["params"]["method"] != "fp"})
        ax.set_xticks(levels, [str(lv) for lv in levels])
        ax.set_xlabel("phase levels n")
        ax.set_ylabel(_unit(grid["primary"]) + f" — {FIDELITY_NAMES[fidelity]}")
        ax.set_title(f"{label}: mean ± std over seeds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = fig_dir / f"{label}_levels.png"
        fig.savefig(p)
        plt.close(fig)
        paths.append(p)
        rank = ranking(grid, fidelity)
        if rank:
            paths.append(_ranking_figure(plt, label, rank, fidelity, fig_dir))
        written[label] = paths
    return written


def _ranking_figure(plt: Any, label: str, rank: list[tuple[str, float, int]], fidelity: str, fig_dir: Path) -> Path:
    """Bar chart of the methods' mean rank (1 = best); returns the PNG path."""
    fig, ax = plt.subplots(figsize=(5.0, 3.2), dpi=120)
    ax.barh([m.upper() for m, _, _ in rank][::-1], [r for _, r, _ in rank][::-1], color="tab:blue")
    ax.set_xlabel("mean rank over level counts (1 = best)")
    ax.set_title(f"{label}: method ranking ({FIDELITY_NAMES[fidelity]})", fontsize=9)
    fig.tight_layout()
    p = fig_dir / f"{label}_ranking.png"
    fig.savefig(p)
    plt.close(fig)
    return p


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
    for path, kind in ((md_path, "file"), (json_path, "file"), (html_path, "file"), (fig_dir, "folder")):
        if path.is_symlink():
            raise SweepError(f"{str(path)!r} is a symbolic link; the report does not write through links")
        if path.exists() and (path.is_dir() != (kind == "folder")):
            raise SweepError(f"{str(path)!r} is in the way (not a {kind})")
        if path.exists() and not force:
            raise SweepError(f"{str(path)!r} already exists; use --force to replace the report, or another --out")
        if kind == "folder" and path.is_dir() and any(not p.name.endswith(".png") or not p.is_file()
                                                      for p in path.iterdir()):
            raise SweepError(f"{str(path)!r} holds files the report did not write; refusing to replace it")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{md_path.stem}.report-", dir=md_path.parent))
    try:
        staged = write_figures(summary, stage / fig_dir.name)
        figures = {k: [fig_dir / p.name for p in v] for k, v in staged.items()}
        text = render_markdown(meta, summary, figures, md_path, notes=notes, spec_path=spec_path,
                               command=command)
        twin = {
            "schema": "quaton-fab/sweep-report", "version": 1, "name": meta.get("name"),
            "cells": len(meta.get("cells", [])), **summary,
            "ranking": {label: [{"method": m, "mean_rank": r, "wins": w} for m, r, w in ranking(g)]
                        for label, g in summary["grids"].items()},
            "figures": {k: [os.path.relpath(p, md_path.parent) for p in v] for k, v in figures.items()},
            "spec_text": meta.get("spec_text", ""),
        }
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
