"""Model packages: one verified ``.zip`` per trained model that people can hand to each other safely.

``export_model`` writes it (``autounet export-model``); ``open_package`` checks and extracts it; ``opened_model``
gives a model folder for either a folder or a package (``autounet predict -m``, ``autounet serve``).
See ``docs/serving.md``.
"""

from autounet.packaging.export import PACKAGE_KIND, PackageError, accepted_formats, cross_validation_dice, export_model
from autounet.packaging.manifest import MANIFEST_FILE, ManifestError, read_manifest, sha256_file, verify_manifest, write_manifest
from autounet.packaging.source import ModelFolder, opened_model
from autounet.packaging.unpack import OpenedPackage, PackageLimits, is_package, open_package, opened_package

__all__ = [
    "MANIFEST_FILE",
    "ManifestError",
    "ModelFolder",
    "OpenedPackage",
    "PACKAGE_KIND",
    "PackageError",
    "PackageLimits",
    "accepted_formats",
    "cross_validation_dice",
    "export_model",
    "is_package",
    "open_package",
    "opened_model",
    "opened_package",
    "read_manifest",
    "sha256_file",
    "verify_manifest",
    "write_manifest",
]
