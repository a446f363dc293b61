"""The common base of every fabrication error (bad material, height, file, export …)."""


class FabError(ValueError):
    """A fabrication input or file that cannot be used; the message is one line naming the bad value."""
