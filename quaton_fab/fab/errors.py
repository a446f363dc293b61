"""The common base of every fabrication error (bad material, height, file, export …)."""

from quaton_fab.errors import QuatonFabError


class FabError(QuatonFabError):
    """A fabrication input or file that cannot be used; the message is one line naming the bad value."""
