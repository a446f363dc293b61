"""The common base of every error a user can cause.

Each layer keeps its own error class (``UnitError``, ``DataError``, ``FabError`` …) so messages and ``except``
clauses stay specific, but all of them derive from :class:`QuatonFabError`. The command-line app catches only
this base (plus ``OSError``, shown as one line with the path and the system's reason), so anything else — a
bug in quaton-fab, numpy or torch — still shows as a bug with its traceback.
"""

from __future__ import annotations

__all__ = ["QuatonFabError", "ResourceError", "FabError"]


class QuatonFabError(ValueError):
    """A user-facing error: bad input, a bad file or a request this machine cannot serve (one-line message)."""


class ResourceError(QuatonFabError):
    """A request that would need more memory than this machine has (the message names the option)."""


class FabError(QuatonFabError):
    """A fabrication input or file that cannot be used (bad material, height, file, export …); one-line message."""
