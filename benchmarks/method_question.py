"""PSQ-LT against PSQ in a study report: per grid and level count, the gap and whether it exceeds the seed spread.

Reads the JSON twin of `quaton-fab report` (e.g. docs/RESULTS.json) and prints a markdown table: PSQ, PSQ-LT
(lab units), PSQ-LT started at PSQ's k·Δ (the matching ``-lt-start`` grid), mean ± std over seeds at the printed
object, the gap PSQ-LT − PSQ and a verdict: "PSQ-LT ahead" / "PSQ ahead" when the gap is larger than the larger
of the two standard deviations, else "within the seed spread" (a single seed has no spread to compare).

    python benchmarks/method_question.py docs/RESULTS.json [--out FILE.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _stat(grid: dict[str, Any], method: str, levels: Any) -> dict[str, Any] | None:
    for row in grid.get("rows", []):
        p = row["params"]
        if p.get("method") == method and p.get("levels") == levels and "reference" in row["metrics"]:
            return row["metrics"]["reference"]
    return None


def _text(stat: dict[str, Any] | None, percent: bool) -> str:
    if stat is None:
        return "–"
    scale, digits = (100.0, 1) if percent else (1.0, 3)
    std = "" if stat.get("std") is None else f" ± {stat['std'] * scale:.{digits}f}"
    return f"{stat['mean'] * scale:.{digits}f}{std}"


def verdict(psq: dict[str, Any] | None, lt: dict[str, Any] | None) -> str:
    """The comparison rule of the module docstring ("–" when a side is missing)."""
    if psq is None or lt is None:
        return "–"
    if psq.get("std") is None or lt.get("std") is None:
        return "one seed: no spread"
    gap = lt["mean"] - psq["mean"]
    spread = max(psq.get("std") or 0.0, lt.get("std") or 0.0)
    if abs(gap) <= spread:
        return "within the seed spread"
    return "PSQ-LT ahead" if gap > 0 else "PSQ ahead"


def table(report: dict[str, Any]) -> str:
    """Markdown table over every grid that has PSQ or PSQ-LT rows."""
    grids = report["grids"]
    lines = ["| grid | levels | PSQ | PSQ-LT | PSQ-LT − PSQ | verdict | PSQ-LT, PSQ's start | verdict (start) |",
             "|---|---|---|---|---|---|---|---|"]
    for label, grid in grids.items():
        if label.endswith("-lt-start"):
            continue
        levels = sorted({r["params"].get("levels") for r in grid["rows"]
                         if r["params"].get("method") in ("psq", "psq-lt")}, key=lambda v: (v is None, v))
        start_grid = grids.get(f"{label}-lt-start", {"rows": []})
        percent = grid.get("primary") == "accuracy"
        for lv in levels:
            psq, lt = _stat(grid, "psq", lv), _stat(grid, "psq-lt", lv)
            lt0 = _stat(start_grid, "psq-lt", lv)
            gap = "–" if psq is None or lt is None else (
                f"{(lt['mean'] - psq['mean']) * (100 if percent else 1):+.{1 if percent else 3}f}")
            lines.append(f"| {label} | {lv} | {_text(psq, percent)} | {_text(lt, percent)} | {gap} | "
                         f"{verdict(psq, lt)} | {_text(lt0, percent)} | {verdict(psq, lt0)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="JSON twin of a study report")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    text = table(json.loads(args.report.read_text(encoding="utf-8")))
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
