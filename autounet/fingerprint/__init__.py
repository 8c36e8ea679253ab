"""Dataset fingerprint: spacings, shapes, crop sizes, foreground intensities and label frequencies."""

from autounet.fingerprint.compute import compute_fingerprint, fingerprint_case
from autounet.fingerprint.schema import (
    FINGERPRINT_VERSION,
    CaseFingerprint,
    Fingerprint,
    IntensityStats,
    load_fingerprint,
)

__all__ = [
    "FINGERPRINT_VERSION",
    "CaseFingerprint",
    "Fingerprint",
    "IntensityStats",
    "compute_fingerprint",
    "fingerprint_case",
    "load_fingerprint",
]
