"""The result of verifying an export: one row per format read back, the three metrics, the two gaps and the verdict
(see :mod:`quaton_fab.analysis.verify`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quaton_fab.analysis.convergence import ProbeResult

__all__ = ["VerifyRow", "VerifyReport"]


@dataclass
class VerifyRow:
    """One exported format: how it was read, how well it matches, and its metric as a printed object."""

    file: str
    reader: str
    level_match: float
    max_height_error_m: float
    metric: float
    heights_m: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


@dataclass
class VerifyReport:
    """Result of :func:`verify_export` (metrics are fractions: accuracy 0…1, SSIM ≤ 1)."""

    metric_name: str
    design_metric: float
    reported_metric: float | None
    reference_design_metric: float
    samples: int
    rows: list[VerifyRow]
    problems: list[str]
    tolerance: float
    design_fidelity: str
    reference_fidelity: str
    checked_files: list[str] = field(default_factory=list)
    probe: ProbeResult | None = None
    fidelity_ids: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The fab sheet as verify read it (once); recording the verdict writes into this copy.
    sheet: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def converged(self) -> bool | None:
        """The convergence probe's verdict: True converged, False not converged, None when no probe was run or it
        was undecided (``probe.verdict`` tells which)."""
        return None if self.probe is None else self.probe.converged

    @property
    def files_metric(self) -> float:
        """The worst metric over the exported formats (as printed objects)."""
        return min(r.metric for r in self.rows)

    @property
    def gap_files(self) -> float:
        """(a) files − design, both as printed objects at the reference fidelity."""
        return self.files_metric - self.reference_design_metric

    @property
    def gap_model(self) -> float:
        """(b) design at the reference fidelity − design at its training fidelity."""
        return self.reference_design_metric - self.design_metric

    @property
    def total_gap(self) -> float:
        """files as printed − design metric (training model); (a) + (b)."""
        return self.files_metric - self.design_metric

    @property
    def within_tolerance(self) -> bool:
        """True when the files lose no more than ``tolerance`` against the design metric."""
        return self.total_gap >= -self.tolerance - 1e-12

    @property
    def largest_cause(self) -> str:
        """Which part of the gap is larger, in words."""
        if self.gap_model <= self.gap_files:
            return (
                f"the printed-object model ({self.reference_fidelity}) loses {-self.gap_model:.4f} against the "
                f"training model ({self.design_fidelity}): train with the relief model at the sampling rule"
            )
        return (
            f"the exported files lose {-self.gap_files:.4f} against the design as a printed object (material, base, "
            "z-step or file errors: export with the design's own fabrication settings)"
        )

    @property
    def files_ok(self) -> bool:
        """True when every listed file is unchanged and reads back to the level table (the gap aside)."""
        return not self.problems

    @property
    def ok(self) -> bool:
        """True when every file reads back to the design, the total gap is within the tolerance and the reference
        is not shown to be unconverged by the probe."""
        return not self.problems and self.within_tolerance and self.converged is not False

    def failures(self) -> list[str]:
        """Every reason the verification failed (empty when ``ok``)."""
        out = list(self.problems)
        if not self.within_tolerance:
            out.append(
                f"{self.metric_name} as printed {self.files_metric:.4f} vs design {self.design_metric:.4f}: gap "
                f"{self.total_gap:+.4f} exceeds the tolerance {self.tolerance:.4f}; largest cause: {self.largest_cause}"
            )
        if self.converged is False:
            out.append(f"not converged: {self.probe.summary()}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (also what the fab sheet records)."""
        return {
            "metric": self.metric_name,
            "samples": self.samples,
            "design_metric": self.design_metric,
            "reported_metric": self.reported_metric,
            "design_fidelity": self.design_fidelity,
            "reference_design_metric": self.reference_design_metric,
            "reference_fidelity": self.reference_fidelity,
            "files_metric": self.files_metric,
            "gap_files": self.gap_files,
            "gap_model": self.gap_model,
            "total_gap": self.total_gap,
            "tolerance": self.tolerance,
            "passed": self.ok,
            "problems": self.failures(),
            "checked_files": self.checked_files,
            "converged": self.converged,
            "probe": None if self.probe is None else self.probe.to_dict(),
            "fidelity_ids": self.fidelity_ids,
            "files": [
                {"file": r.file, "reader": r.reader, "level_match": r.level_match,
                 "max_height_error_m": r.max_height_error_m, "metric": r.metric,
                 "gap": r.metric - self.design_metric}
                for r in self.rows
            ],
        }
