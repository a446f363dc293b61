"""Sweep specifications: a grid over training options, read from TOML or YAML, expanded into cells.

One idea: which runs a sweep holds. A spec has one or more *grids*. Each grid starts from a preset, fixes some
training options (``set``) and varies others (``vary``, the Cartesian product of the lists). Every combination
is a :class:`Cell`, an ordinary training run with its own run directory ``<sweep>/<grid label>/<cell name>``.

TOML example (YAML with the same structure works too)::

    name = "study"
    evaluate = "reference"          # also simulate each design as the printed object (default)

    [[grid]]
    label = "classify-mnist"
    preset = "quickstart"
    [grid.set]
    neurons = 28
    pitch = "0.78um"                # lengths as text with a unit, or SI floats under the field name (pitch_m)
    epochs = 2
    [grid.vary]
    method = ["fp", "pq", "ste", "gs", "psq", "psq-lt"]
    levels = [2, 4, 8, 16]
    seed = [0, 1, 2]
    [grid.only]                     # optional: restrict some values of a varied option to others
    fp = { levels = [4] }           # FP is not quantized in training: one level count is enough

Option names are the fields of :class:`~quaton_fab.training.config.TrainConfig` (``train_samples``, ``lr``,
``quantizer`` …); ``-`` may be written for ``_``, and a length field may be given without its ``_m`` suffix as
text with a unit (``spacing = "25um"``); ``"none"`` unsets a preset's length (``z_step = "none"``: exact heights).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quaton_fab.bounded import loads_toml, loads_yaml, read_text
from quaton_fab.confine import plain_name
from quaton_fab.errors import QuatonFabError
from quaton_fab.training.config import PRESETS, ConfigError, TrainConfig
from quaton_fab.units import parse_length
from quaton_fab.vocabulary import FIDELITIES

#: Fidelities a sweep can evaluate each finished design at (besides the metric its training reports).
EVALUATE = FIDELITIES

_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
#: Options a sweep must leave alone: they are the sweep's to set (run directory, device, threads).
_RESERVED = {"device", "threads"}
_SAFE = re.compile(r"[^A-Za-z0-9.,+=-]+")
#: Most cells one sweep may hold (counted before the grid is expanded).
MAX_CELLS = 10_000
#: Largest spec file read.
MAX_SPEC_BYTES = 1024 * 1024


class SpecError(QuatonFabError):
    """A sweep specification that cannot be read or expanded (one line naming the bad entry)."""


@dataclass(frozen=True)
class Cell:
    """One run of a sweep.

    Attributes:
        grid: label of the grid the cell belongs to (its sub-folder).
        params: the varied options of this cell, in the spec's order (name → value).
        overrides: every option given to the preset (``set`` and ``params`` merged; SI units).
        preset: the preset the configuration starts from.
    """

    grid: str
    params: dict[str, Any]
    overrides: dict[str, Any]
    preset: str

    @property
    def name(self) -> str:
        """Folder name of the cell: ``method=psq-lt,levels=4,seed=0`` (characters outside [A-Za-z0-9.,+=-] → _)."""
        parts = [f"{k}={_short(v)}" for k, v in self.params.items()]
        return _SAFE.sub("_", ",".join(parts)) or "cell"

    @property
    def key(self) -> str:
        """Unique key of the cell within a sweep: ``<grid>/<name>``."""
        return f"{self.grid}/{self.name}"

    def config(self) -> TrainConfig:
        """The cell's training configuration (validated); an override of None unsets the preset's value."""
        values = dict(PRESETS[self.preset])
        values.update(self.overrides)
        try:
            return TrainConfig(**values)
        except (TypeError, ValueError, ConfigError, OverflowError) as exc:  # wrong types reach the dataclass too
            raise SpecError(f"cell {self.key}: {' '.join(str(exc).split()) or type(exc).__name__}") from None

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of the cell's configuration: a cell folder belongs to one configuration.

        Only the settings that differ from :class:`TrainConfig`'s defaults enter, so a new setting added to
        the software later (with a default that keeps the old behaviour) leaves finished cells valid.
        """
        defaults = TrainConfig().to_dict()
        config = {k: v for k, v in self.config().to_dict().items() if k not in defaults or v != defaults[k]}
        text = json.dumps(config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {"grid": self.grid, "name": self.name, "preset": self.preset, "params": dict(self.params),
                "overrides": dict(self.overrides)}


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep specification.

    Attributes:
        name: the sweep's name (report title).
        grids: list of grid dicts as read (label, preset, set, vary, only).
        evaluate: fidelities each finished design is simulated at (``reference``: the printed object).
        eval_samples: test samples for the extra evaluations (None: the configuration's test split).
        figures: write each run's figures (slower; off by default in sweeps).
        source_text: the spec file's text (stored in the sweep folder so a resumed sweep can be checked).
    """

    name: str
    grids: list[dict[str, Any]]
    evaluate: tuple[str, ...] = ("reference",)
    eval_samples: int | None = None
    figures: bool = False
    source_text: str = ""
    cells: list[Cell] = field(default_factory=list)


def _short(value: Any) -> str:
    """A compact text form of a parameter value for folder names."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "-".join(_short(v) for v in value)
    if isinstance(value, dict):
        return "-".join(f"{k}{_short(v)}" for k, v in value.items())
    return str(value)


def normalize_option(name: str, value: Any, where: str) -> tuple[str, Any]:
    """Map a spec option to a TrainConfig field and value (lengths with units → metres).

    Raises:
        SpecError: unknown option, reserved option or a length that does not parse.
    """
    key = str(name).strip().replace("-", "_")
    _check_plain(value, f"{where}: {name}")
    if key == "seed" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise SpecError(f"{where}: seed must be a non-negative integer, got {value!r}")
    if key in ("level_phases_rad", "level_range_rad") and value is not None and (
            not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in value)):
        raise SpecError(f"{where}: {name} must be a list of numbers (radians), got {value!r}")
    if key in _RESERVED:
        raise SpecError(f"{where}: {name!r} is set by the sweep itself (workers and threads), not per cell")
    if key in _FIELDS:
        if key.endswith("_m") and isinstance(value, str):
            return key, _length(value, f"{where}: {name}")
        return key, value
    if key + "_m" in _FIELDS:
        field_name = key + "_m"
        if isinstance(value, str):
            return field_name, _length(value, f"{where}: {name}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise SpecError(
                f"{where}: give {name} with a unit, e.g. {name} = \"{value}um\" (or {field_name} in metres)"
            )
        return field_name, value
    if key == "z_step":
        return "z_step_m", _length(value, f"{where}: {name}")
    raise SpecError(f"{where}: unknown training option {name!r}")


def _check_plain(value: Any, where: str, depth: int = 0) -> None:
    """Refuse values that are not text, numbers, booleans, lists or tables of them (e.g. YAML dates)."""
    if depth > 8:
        raise SpecError(f"{where}: nested too deeply")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, where, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _check_plain(item, where, depth + 1)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise SpecError(f"{where}: {value!r} is a {type(value).__name__}, not text, a number or a list")
    elif isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{where}: {value!r} is not a finite number")


def _length(text: Any, where: str) -> float | None:
    """A length with a unit (m); ``none`` (or null) unsets the preset's value."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "none"):
        return None
    try:
        value = parse_length(str(text))
    except (ValueError, QuatonFabError) as exc:
        raise SpecError(f"{where}: {exc}") from None
    if not math.isfinite(value):
        raise SpecError(f"{where}: {text!r} is not a finite length")
    return value


def load_spec_text(path: str | Path) -> tuple[str, dict[str, Any]]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) spec file: (text, parsed mapping)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SpecError(f"sweep spec {str(p)!r}: use a .toml, .yaml or .yml file")
    if not p.exists():
        raise SpecError(f"sweep spec {str(p)!r} does not exist")
    if not p.is_file():
        raise SpecError(f"sweep spec {str(p)!r} is not a file")
    text = read_text(p, "sweep spec", SpecError, max_bytes=MAX_SPEC_BYTES)
    what = f"sweep spec {str(p)!r}"
    data = loads_toml(text, what, SpecError) if suffix == ".toml" else loads_yaml(text, what, SpecError)
    if not isinstance(data, dict):
        raise SpecError(f"sweep spec {str(p)!r} must be a mapping at the top level")
    return text, data


def parse_spec(data: dict[str, Any], source_text: str = "") -> SweepSpec:
    """Validate a parsed spec mapping and expand it into cells (each configuration validated).

    Raises:
        SpecError: unknown keys, empty grids, duplicate cells, an invalid configuration in any cell.
    """
    known = {"name", "grid", "evaluate", "eval_samples", "figures"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"sweep spec: unknown top-level key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    grids = data.get("grid")
    if not isinstance(grids, list) or not grids:
        raise SpecError("sweep spec: needs at least one [[grid]] table")
    evaluate = data.get("evaluate", ["reference"])
    if not isinstance(evaluate, (str, list)):
        raise SpecError(f"sweep spec: evaluate must be one of {', '.join(EVALUATE)} or a list, got {evaluate!r}")
    evaluate = (evaluate,) if isinstance(evaluate, str) else tuple(evaluate)
    for e in evaluate:
        if not isinstance(e, str) or e not in EVALUATE:
            raise SpecError(f"sweep spec: evaluate {e!r} is not one of {', '.join(EVALUATE)}")
    eval_samples = data.get("eval_samples")
    if eval_samples is not None and (isinstance(eval_samples, bool) or not isinstance(eval_samples, int)
                                     or eval_samples < 1):
        raise SpecError(f"sweep spec: eval_samples must be a positive integer, got {eval_samples!r}")
    if not isinstance(data.get("figures", False), bool):
        raise SpecError(f"sweep spec: figures must be true or false, got {data.get('figures')!r}")
    if not isinstance(data.get("name", "sweep"), (str, int, float)):
        raise SpecError(f"sweep spec: name must be text, got {data.get('name')!r}")
    cells: list[Cell] = []
    labels: set[str] = set()
    for i, grid in enumerate(grids, 1):
        cells += _expand_grid(grid, i, labels, MAX_CELLS - len(cells))
    counts = Counter(c.key for c in cells)  # linear time
    dupes = sorted(k for k, n in counts.items() if n > 1)
    if dupes:
        raise SpecError(f"sweep spec: cell {dupes[0]!r} appears twice")
    for cell in cells:
        cell.config()  # validate every configuration now, not an hour into the sweep
    return SweepSpec(
        name=str(data.get("name", "sweep")),
        grids=grids,
        evaluate=evaluate,
        eval_samples=eval_samples,
        figures=bool(data.get("figures", False)),
        source_text=source_text,
        cells=cells,
    )


def _expand_grid(grid: Any, index: int, labels: set[str], room: int = MAX_CELLS) -> list[Cell]:
    where = f"grid {index}"
    if not isinstance(grid, dict):
        raise SpecError(f"{where}: must be a table")
    unknown = sorted(set(grid) - {"label", "preset", "set", "vary", "only"})
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r} (known: label, preset, set, vary, only)")
    name = str(grid.get("preset", "quickstart"))
    if name not in PRESETS:
        raise SpecError(f"{where}: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    raw_label = grid.get("label", f"grid{index}")
    if not isinstance(raw_label, (str, int)) or isinstance(raw_label, bool):
        raise SpecError(f"{where}: label must be text, got {raw_label!r}")
    label = _SAFE.sub("_", str(raw_label))
    try:  # the label is a folder inside the sweep folder: never '.', '..', hidden or empty
        plain_name(label, f"{where}: label")
    except QuatonFabError as exc:
        raise SpecError(str(exc)) from None
    where = f"grid {label!r}"
    if label in labels:
        raise SpecError(f"{where}: two grids have this label")
    labels.add(label)
    fixed_in = grid.get("set") or {}
    if not isinstance(fixed_in, dict):
        raise SpecError(f"{where}: set must be a table of options, got {fixed_in!r}")
    fixed = dict(normalize_option(k, v, where) for k, v in fixed_in.items())
    vary_in = grid.get("vary") or {}
    if not isinstance(vary_in, dict):
        raise SpecError(f"{where}: vary must be a table of lists")
    vary: dict[str, tuple[str, list[Any]]] = {}
    size = 1
    for k, values in vary_in.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: vary.{k} must be a non-empty list")
        size *= len(values)
        if size > room:
            raise SpecError(f"{where}: the grid has more than {room} cells (a sweep holds at most {MAX_CELLS}); "
                            "split it or vary fewer values")
        field_name = normalize_option(k, values[0], where)[0]
        vary[str(k)] = (field_name, [normalize_option(k, v, where)[1] for v in values])
    only = grid.get("only") or {}
    if not isinstance(only, dict):
        raise SpecError(f"{where}: only must be a table")
    cells = []
    names = list(vary)
    for combo in itertools.product(*(vary[k][1] for k in names)) if names else [()]:
        params = {k: v for k, v in zip(names, combo)}
        if not _allowed(params, only, vary, where):
            continue
        overrides = dict(fixed)
        overrides.update({vary[k][0]: v for k, v in params.items()})
        cells.append(Cell(grid=label, params=params, overrides=overrides, preset=name))
    return cells


def _allowed(params: dict[str, Any], only: dict[str, Any], vary: dict[str, tuple[str, list[Any]]], where: str) -> bool:
    """False when an ``only`` rule (``value = {option = [allowed values]}``) excludes this combination."""
    for value, rules in only.items():
        if not isinstance(rules, dict):
            raise SpecError(f"{where}: only.{value} must be a table like {{ levels = [4] }}")
        if str(value) not in {str(v) for v in params.values()}:
            continue
        for option, allowed in rules.items():
            if option not in vary:
                raise SpecError(f"{where}: only.{value}.{option}: {option!r} is not a varied option")
            allowed_list = allowed if isinstance(allowed, list) else [allowed]
            norm = {json.dumps(normalize_option(option, a, where)[1], sort_keys=True) for a in allowed_list}
            if json.dumps(params[option], sort_keys=True) not in norm:
                return False
    return True


def read_spec(path: str | Path) -> SweepSpec:
    """Read, validate and expand a spec file (TOML or YAML)."""
    text, data = load_spec_text(path)
    return parse_spec(data, text)
