"""A sweep's summary: finished cells grouped by every varied option but the seed, mean ± std per fidelity, and
the method ranking (:mod:`quaton_fab.sweep.report` has the conventions in words).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from quaton_fab.confine import plain_name
from quaton_fab.errors import QuatonFabError
from quaton_fab.sweep.runner import SweepError
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
