"""The one error type of the data layer.

Every loader raises :class:`DataError` (a ``ValueError``) with a single-line message that names what was
expected and where, so the CLI can print it as is and exit with code 2.
"""

from __future__ import annotations

from quaton_fab.errors import QuatonFabError


class DataError(QuatonFabError):
    """A dataset source is missing, malformed or misspecified (one-line message)."""
