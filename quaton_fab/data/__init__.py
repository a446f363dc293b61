"""Offline dataset sources, synthetic red blood cells, and image → input-field encoding.

Public surface (docs/ARCHITECTURE.md, "Data"):

* :func:`load_dataset` (spec ``mnist`` | ``fashion-mnist`` | ``idx:PATH`` | ``cifar10:PATH`` | ``rbc`` |
  ``folder:PATH`` | ``npz:PATH`` | ``synthetic``) → :class:`DatasetSplits` of :class:`Split`;
* :class:`Encoding` (image → field on the neuron grid);
* :class:`DataError` / :class:`EncodingError` (``ValueError`` subclasses with one-line messages).
"""

from .encoding import Encoding, EncodingError
from .errors import DataError
from .rbc import RBCConfig
from .sources import SOURCES, load_dataset
from .splits import DatasetSplits, Split

__all__ = [
    "SOURCES",
    "DataError",
    "DatasetSplits",
    "Encoding",
    "EncodingError",
    "RBCConfig",
    "Split",
    "load_dataset",
]
