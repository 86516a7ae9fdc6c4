"""Errors of the data layer: each names the file, its expected checksum and where to get it."""

from __future__ import annotations


class MissingDataError(FileNotFoundError):
    """A dataset file is not under the data folder."""


class CorruptDataError(ValueError):
    """A dataset file is present but its checksum or content is wrong."""
