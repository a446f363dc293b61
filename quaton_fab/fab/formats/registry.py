"""The export formats, one :class:`~quaton_fab.fab.formats.spec.FormatSpec` each: the one place they are listed.

The export (:mod:`quaton_fab.fab.export`) plans, writes and checks files by looping over ``REGISTRY``; ``verify``
reads them back by the same loop; the fab sheet renders the sections the specs name. A new format is one spec
added here (or at run time: ``REGISTRY[name] = spec``).

Orders: ``REGISTRY`` (and ``FORMATS``, what ``--format all`` means) keeps the order of earlier versions; the
ranks of each spec keep the order of the planned files, of the files in the fab sheet and of verify's rows,
so the exported bytes and the output do not change.
"""

from __future__ import annotations

from collections.abc import Iterable

from quaton_fab.fab.formats.gds_spec import GDS, OAS
from quaton_fab.fab.formats.gwl_spec import GWL
from quaton_fab.fab.formats.heightmap_spec import BMP, PNG, PNG8, TIFF
from quaton_fab.fab.formats.spec import FormatSpec, ReadBack, ReadJob, WriteJob
from quaton_fab.fab.formats.stl_spec import STL
from quaton_fab.vocabulary import FORMATS

__all__ = ["REGISTRY", "FORMATS", "selected", "planned_names", "write_formats", "read_formats", "grid_free",
           "needs_grid", "sheet_sections"]

#: Format name → spec, in the order of ``quaton_fab.vocabulary.FORMATS`` (what ``--format all`` lists; the
#: names live there so the command line can offer them without importing the writers).
REGISTRY: dict[str, FormatSpec] = {
    spec.name: spec for spec in sorted((STL, GDS, OAS, PNG, TIFF, PNG8, BMP, GWL), key=lambda s: FORMATS.index(s.name))
}


def selected(formats: Iterable[str]) -> list[FormatSpec]:
    """The specs of ``formats`` (names in ``REGISTRY``), in registry order, each once."""
    wanted = set(formats)
    return [spec for name, spec in REGISTRY.items() if name in wanted]


def planned_names(formats: Iterable[str], masks: int, stack: bool) -> list[str]:
    """The file names the formats write for ``masks`` masks (with ``stack``: the stacked parts), in plan order."""
    return [name for spec in sorted(selected(formats), key=lambda s: s.plan_rank) for name in spec.files(masks, stack)]


def write_formats(formats: Iterable[str], job: WriteJob) -> None:
    """Write every format of ``formats`` into ``job.folder`` (in write order), each read back and checked."""
    for spec in sorted(selected(formats), key=lambda s: s.write_rank):
        spec.write(job)


def read_formats(job: ReadJob) -> list[ReadBack]:
    """Every format's files that the fab sheet lists, read back (one item per reader that finds its files)."""
    readers = sorted((reader for spec in REGISTRY.values() for reader in spec.readers), key=lambda r: r.rank)
    return [item for reader in readers if (item := reader.read(job)) is not None]


def needs_grid(formats: Iterable[str]) -> list[str]:
    """The formats of ``formats`` that need a printer with a slicing (and hatching) grid."""
    return [spec.name for spec in selected(formats) if spec.needs_grid]


def grid_free(formats: Iterable[str]) -> tuple[str, ...]:
    """``formats`` without those needing a slicing grid (what a grayscale printer can take)."""
    return tuple(name for name in formats if name in REGISTRY and not REGISTRY[name].needs_grid)


def sheet_sections() -> tuple[str, ...]:
    """The fab sheet's ``extra`` sections the formats fill and the sheet renders (each once, in registry order).

    ``FormatSpec.other_keys`` (e.g. the per-mask STL stats) are not among them: the sheet lists those under "Other".
    """
    return tuple(dict.fromkeys(key for spec in REGISTRY.values() for key in spec.sheet_keys))
