"""Quantization-aware training: the level set and the quantizers (FP, PQ, STE, GS, PSQ, PSQ-LT).

See docs/QUANTIZERS.md for the methods and their schedules.
"""

from quaton_fab.quant.levels import LevelSet, LevelSetError
from quaton_fab.quant.quantizers import METHODS, Quantizer, QuantizerError, make_quantizer

__all__ = ["METHODS", "LevelSet", "LevelSetError", "Quantizer", "QuantizerError", "make_quantizer"]
