"""A sweep's figures: metric vs level count per method (mean ± std over seeds) and the method ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quaton_fab.sweep.report_summary import FIDELITY_NAMES, _method_key, _unit, ranking
from quaton_fab.tasks.metrics import metric_spec


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
