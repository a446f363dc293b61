"""Diffraction engine: band-limited angular-spectrum propagation and the stacked-mask network."""

from quaton_fab.optics.network import DiffractiveNetwork, FreePhase, Geometry, GeometryError
from quaton_fab.optics.propagation import (
    PROPAGATION_MODEL,
    AngularSpectrum,
    OpticsError,
    auto_padding,
    propagate,
)

__all__ = [
    "PROPAGATION_MODEL",
    "AngularSpectrum",
    "DiffractiveNetwork",
    "FreePhase",
    "Geometry",
    "GeometryError",
    "OpticsError",
    "auto_padding",
    "propagate",
]
