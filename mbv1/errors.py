"""User-facing errors of mbv1.

Every error raised on purpose by mbv1 derives from :class:`MBV1Error`; its message is a single
line that says what went wrong and what to do. The CLI prints it without a traceback.
"""

from __future__ import annotations


class MBV1Error(Exception):
    """A user-facing mbv1 error with a one-line message."""


class AssetMissing(MBV1Error):
    """A pinned asset (weights, sample data) is not in the local cache yet."""
