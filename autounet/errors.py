"""Exception types that carry a message a user can act on."""

from __future__ import annotations


class AutounetError(Exception):
    """Base class of every error autounet raises on purpose.

    The message always says what was expected, what was found and what to do next.
    The command line prints it without a traceback.
    """


class DatasetError(AutounetError, ValueError):
    """A dataset folder or one of its files is not usable as it is."""


class ImageReadError(AutounetError, OSError):
    """An image file could not be read (missing, truncated, unknown format)."""


class PlansError(AutounetError, ValueError):
    """Plans or an override cannot be used (wrong schema, impossible value)."""


class MissingStageError(AutounetError, FileNotFoundError):
    """A stage needs the output of an earlier stage that is not there yet."""


class DiskFullError(AutounetError, OSError):
    """A write failed because the disk (or the user's quota) is full; files written before are complete and kept."""


class OutOfMemoryError(AutounetError, MemoryError):
    """A step ran out of (GPU or main) memory; the message says where, how much was asked for and what to lower."""
