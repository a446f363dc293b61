"""The fab sheet's file names, apart from :mod:`quaton_fab.fab.sheet` so that the format modules (which the sheet
renders through the registry) can name the sheet without importing it."""

from __future__ import annotations

__all__ = ["JSON_NAME", "MD_NAME"]

#: The machine-readable fab sheet (written last: a folder holding it is a complete export).
JSON_NAME = "fab_sheet.json"
#: The human-readable fab sheet.
MD_NAME = "fab_sheet.md"
