"""Summarise the paper-setting slice of benchmarks/gpu_study.sh: one row per run directory.

For a finished run: the test metric (10,000 digits, thin-mask model = the run's training model, hard-quantized
masks), the best-validation epoch, the validation metric per epoch and the final sharpness k·Δ and |κ| per
mask. For a run stopped by the time limit (no design.json): the validation history from its checkpoint.

    python benchmarks/paper_slice_summary.py OUT/paper --out OUT/paper_slice.md

Writes the markdown table and a JSON twin (same name, .json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch


def _history(run: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None, dict[str, Any]]:
    """(history, metrics or None, training config) of a run directory."""
    metrics_file, design_file = run / "metrics.json", run / "design.json"
    if metrics_file.is_file() and design_file.is_file():
        payload = json.loads(metrics_file.read_text(encoding="utf-8"))
        training = json.loads(design_file.read_text(encoding="utf-8")).get("training", {})
        return payload.get("history", []), payload.get("metrics"), training
    checkpoint = run / "checkpoint.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        return list(state.get("history", [])), None, dict(state.get("config", {}))
    return [], None, {}


def summarise(root: Path) -> list[dict[str, Any]]:
    """One dict per run directory under ``root`` (sorted by name)."""
    rows = []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        history, metrics, training = _history(run)
        primary = (metrics or {}).get("primary", "accuracy" if training.get("task") != "qpi" else "ssim")
        last = history[-1] if history else {}
        rows.append({
            "run": run.name,
            "method": training.get("method"),
            "levels": training.get("levels"),
            "epochs_planned": training.get("epochs"),
            "epochs_done": len(history),
            "finished": metrics is not None,
            "primary": primary,
            "test": None if metrics is None else metrics.get("test", {}).get(primary),
            "test_samples": None if metrics is None else metrics.get("test", {}).get("samples"),
            "best_epoch": None if metrics is None else metrics.get("best_epoch"),
            "val": [h.get("val", {}).get(primary) for h in history],
            "time_s": last.get("time_s"),
            "k_delta_per_mask": [m.get("k_delta") for m in last.get("quantizer_per_mask", [])],
            "kappa_abs_per_mask": [m.get("kappa_abs") for m in last.get("quantizer_per_mask", [])
                                   if "kappa_abs" in m],
        })
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the rows."""
    lines = ["| run | method | levels | epochs | test (hard, thin model) | validation per epoch | train time (s) | "
             "final k·Δ per mask | final \\|κ\\| per mask |", "|" + "---|" * 9]
    for r in rows:
        percent = r["primary"] == "accuracy"

        def fmt(v: float | None, percent: bool = percent) -> str:
            return "–" if v is None else (f"{v * 100:.2f}" if percent else f"{v:.4f}")

        test = fmt(r["test"]) + (f" ({r['test_samples']} samples)" if r["test"] is not None else " (not finished)")
        lines.append(
            f"| {r['run']} | {r['method']} | {r['levels']} | {r['epochs_done']}/{r['epochs_planned']} | {test} | "
            + ", ".join(fmt(v) for v in r["val"]) + " | "
            + ("–" if r["time_s"] is None else f"{r['time_s']:.0f}") + " | "
            + ", ".join(f"{v:.1f}" for v in r["k_delta_per_mask"]) + " | "
            + ", ".join(f"{v:.4f}" for v in r["kappa_abs_per_mask"]) + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder holding one run directory per method")
    parser.add_argument("--out", type=Path, required=True, help="markdown file to write (JSON twin beside it)")
    args = parser.parse_args()
    rows = summarise(args.root)
    args.out.write_text(markdown(rows), encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
