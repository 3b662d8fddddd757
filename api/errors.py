"""Errors the library layers raise; routes translate them to HTTP statuses.

Each message says what to fix, so it can be shown to the user verbatim.
"""

from __future__ import annotations


class AvipError(ValueError):
    """Base class; never raised directly."""


class NotFound(AvipError):
    """The thing does not exist, or is not the caller's (both look the same)."""


class Conflict(AvipError):
    """The request is valid but clashes with the current state."""


class Invalid(AvipError):
    """The request is malformed; ``field`` names the offending input when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Refused(AvipError):
    """The request can never succeed under the caller's quota or the cluster's size."""


class OverCap(AvipError):
    """The caller already holds as many as a per-user cap allows (jobs queued, filters)."""


class TooLarge(AvipError):
    """The request would make the service hold too much at once; the message says how
    to get the same thing otherwise."""
