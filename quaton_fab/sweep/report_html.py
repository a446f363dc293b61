"""The study page: a sweep's report as one self-contained ``report.html`` beside ``report.md``.

One idea: render the summary of :mod:`quaton_fab.sweep.report` (mean ± std over seeds per method × levels ×
task, at every fidelity) as an offline page: the study table, interactive metric-vs-levels figures per grid with
error bars (± one sample standard deviation over seeds), the method ranking, and a link to each cell's design
report (``<cell>/export/report.html`` once the cell is exported; the export command otherwise). Everything is
inlined (see :mod:`quaton_fab.html_page`); the figures use the vendored plotly.js.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Mapping

from quaton_fab.html_page import asset_text, esc, html_document, plotly_js
from quaton_fab.tasks.metrics import metric_axis_label, metric_spec

__all__ = ["SWEEP_PAGE_SCHEMA", "render_sweep_page", "cell_report_link"]

SWEEP_PAGE_SCHEMA = "quaton-fab/sweep-page"
#: Where a cell's design report is expected (relative to the cell folder): ``quaton-fab export CELL`` default.
CELL_REPORT = Path("export") / "report.html"


def cell_report_link(sweep_dir: Path, page_dir: Path, cell: str) -> str:
    """HTML for one cell: a link to its design report if it exists, else its folder and the export command."""
    cell_dir = sweep_dir / cell
    report = cell_dir / CELL_REPORT
    if report.is_file():
        rel = Path(os.path.relpath(report, page_dir)).as_posix()
        return f'<a class="cell-report" href="{esc(rel)}">{esc(cell)}</a>'
    rel_dir = Path(os.path.relpath(cell_dir, page_dir)).as_posix()
    command = shlex.join(["quaton-fab", "export", str(cell_dir), "--format", "all"])
    return (f'<a class="cell-dir" href="{esc(rel_dir)}/" title="no design report yet: {esc(command)}">'
            f"{esc(Path(cell).name)}</a><span class=\"muted\">*</span>")


def _stat_text(stat: Mapping[str, Any] | None, primary: str) -> str:
    if not stat:
        return "–"
    scale, digits = metric_spec(primary).scale, metric_spec(primary).digits
    mean = f"{stat['mean'] * scale:.{digits}f}"
    text = mean if stat.get("std") is None else f"{mean} ± {stat['std'] * scale:.{digits}f}"
    return f'<span class="num" data-value="{stat["mean"]!r}">{esc(text)}</span>'


def _unit(primary: str) -> str:
    return metric_axis_label(primary)


def _grid_section(label: str, grid: Mapping[str, Any], rank: list[tuple[str, float, int]], fid_names: Mapping[str, str],
                  fid_order: tuple[str, ...], sweep_dir: Path, page_dir: Path, index: int) -> str:
    primary = grid["primary"]
    fids = [f for f in fid_order if any(f in r["metrics"] for r in grid["rows"])]
    header = [esc(k) for k in grid["group_by"]] + ["seeds"] + [esc(fid_names.get(f, f)) for f in fids] + [
        "train time (s)", "cells (design reports)"]
    rows = []
    for r in grid["rows"]:
        cells = " ".join(cell_report_link(sweep_dir, page_dir, c) for c in r.get("cells", []))
        rows.append([esc(r["params"][k]) for k in grid["group_by"]] + [esc(r["n"])]
                    + [_stat_text(r["metrics"].get(f), primary) for f in fids]
                    + ["–" if r.get("train_time_s") is None else f"{r['train_time_s']:.0f}", cells])
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    table = f'<table class="study"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    has_curve = "method" in grid["group_by"] and "levels" in grid["group_by"]
    fig = (f'<div class="figure wide plot2d" id="levels-{index}" data-grid="{esc(label)}"></div>' if has_curve else "")
    rank_html = ""
    if rank:
        rrows = "".join(f"<tr><td>{i + 1}</td><td>{esc(m.upper())}</td><td class=\"r\">{r:.2f}</td><td class=\"r\">"
                        f"{w}</td></tr>" for i, (m, r, w) in enumerate(rank))
        rank_html = ("<h3>Method ranking (printed-object fidelity; mean rank over level counts, 1 = best; FP "
                     "excluded)</h3><div class=\"grid\"><table class=\"ranking\"><thead><tr><th>place</th><th>method"
                     "</th><th>mean rank</th><th>wins</th></tr></thead><tbody>" + rrows + "</tbody></table>"
                     f'<div class="figure plot2d" id="ranking-{index}" style="width:460px;height:300px"></div></div>')
    return (f'<section id="grid-{index}"><h2>{esc(label)}</h2><p>Metric: {esc(_unit(primary))}; mean ± sample '
            "standard deviation over seeds.</p>" + fig + rank_html + "<h3>Study table</h3>" + table + "</section>")


def render_sweep_page(meta: Mapping[str, Any], summary: Mapping[str, Any], ranks: Mapping[str, list],
                      sweep_dir: str | Path, page_path: str | Path, *, fid_names: Mapping[str, str],
                      fid_order: tuple[str, ...], command: str | None = None) -> str:
    """The study page (HTML text). ``ranks``: per grid label, [(method, mean rank, wins)] best first."""
    sweep = Path(sweep_dir)
    page_dir = Path(page_path).parent
    name = meta.get("name", "sweep")
    n_cells = len(meta.get("cells", []))
    intro = (f"<p>{summary['done']} of {n_cells} cells finished"
             + (f", {len(summary['failed'])} failed or interrupted" if summary["failed"] else "")
             + ". The printed-object metric (reference fidelity: the sampling rule and the relief sliced at λ0/8 or "
             "finer) is the one that counts; the training-model metric is the design's own model. Error bars: ± one "
             "sample standard deviation over seeds (none for a single seed).</p>")
    if command:
        intro += f"<p>Reproduce: <code>{esc(command)}</code></p>"
    intro += ("<p>The last column links each seed's design report; a cell marked * is not exported yet (its link "
              "opens the cell folder): <code>quaton-fab export SWEEP_DIR/GRID/CELL --format all</code> writes "
              f"<code>CELL/{CELL_REPORT.as_posix()}</code>, and the next <code>quaton-fab report</code> links it."
              "</p>")
    sections = []
    data_grids = []
    for i, (label, grid) in enumerate(summary["grids"].items()):
        rank = ranks.get(label) or []
        sections.append(_grid_section(label, grid, rank, fid_names, fid_order, sweep, page_dir, i))
        data_grids.append({"label": label, "primary": grid["primary"], "group_by": grid["group_by"],
                           "rows": [{"params": r["params"], "metrics": r["metrics"]} for r in grid["rows"]],
                           "ranking": [{"method": m, "mean_rank": r, "wins": w} for m, r, w in rank]})
    failed = ""
    if summary["failed"]:
        items = "".join(f"<li><code>{esc(f['key'])}</code>: {esc(f['status'])}: {esc(f['error'])}</li>"
                        for f in summary["failed"])
        failed = f'<section id="failed"><h2>Cells not finished</h2><ul>{items}</ul></section>'
    spec = f'<section id="spec"><h2>Spec</h2><pre class="mono">{esc(meta.get("spec_text", ""))}</pre></section>'
    nav = "".join(f'<a href="#grid-{i}">{esc(label)}</a>' for i, label in enumerate(summary["grids"]))
    body = (f"<header><h1>{esc(name)}: results</h1><div class=\"sub\">quaton-fab study report · open offline, "
            f"nothing is fetched</div></header><nav>{nav}<a href=\"#spec\">Spec</a></nav><main>{intro}"
            + "".join(sections) + failed + spec + "</main>")
    data = {"schema": SWEEP_PAGE_SCHEMA, "version": 1, "grids": data_grids, "fidelity": "reference",
            "fidelity_name": fid_names.get("reference", "reference")}
    return html_document(f"{name}: results", body, data, [plotly_js(), asset_text("sweep_report.js")])
