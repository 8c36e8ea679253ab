"""Keep a command's output folder apart from its input folders, so writing (or replacing) the output never touches
the inputs: ``predict -o`` equal to ``-i`` would replace the images with label maps, ``import -o IMAGES --overwrite``
would delete the source images."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from autounet.errors import AutounetError
from autounet.typing import PathType


class OutputFolderError(AutounetError, ValueError):
    """The output folder cannot be used: it overlaps an input folder or is a file."""


def folder_relation(output: PathType, other: PathType) -> str | None:
    """How ``output`` relates to ``other`` after resolving links: ``"is"``, ``"is inside"``, ``"contains"`` or None.

    Parameters
    ----------
    output, other : str or Path
        Two folders (they need not exist).

    Examples
    --------
    >>> folder_relation("/data/scans", "/data/scans/"), folder_relation("/data/scans/out", "/data/scans")
    ('is', 'is inside')
    >>> folder_relation("/data", "/data/scans"), folder_relation("/data/out", "/data/scans") is None
    ('contains', True)
    """
    a, b = Path(os.path.realpath(output)), Path(os.path.realpath(other))
    if a == b:
        return "is"
    if b in a.parents:
        return "is inside"
    if a in b.parents:
        return "contains"
    return None


def require_separate_output(output: PathType, inputs: Mapping[str, PathType | None], allow_nested: bool = False) -> None:
    """Refuse an output folder that is, is inside or contains one of the input folders, or is an existing file.

    Parameters
    ----------
    output : str or Path
        The folder the command writes into (and may replace).
    inputs : mapping of str to path
        Input folders by how the user gave them (``{"-i": ...}``); None values are ignored.
    allow_nested : bool
        Refuse only the very same folder (for commands that never read or replace subfolders).

    Raises
    ------
    OutputFolderError
        Saying which input it overlaps, why that is refused and what to do.

    Examples
    --------
    >>> require_separate_output("/data/labels", {"-i": "/data/scans"})
    >>> require_separate_output("/data/scans", {"-i": "/data/scans"})
    Traceback (most recent call last):
    ...
    autounet.separate_folders.OutputFolderError: the output folder /data/scans is the input folder (-i /data/scans): files of the same name would be replaced or deleted, and a later run would take outputs for inputs. Choose an output folder outside the inputs (e.g. /data/scans_output)
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise OutputFolderError(
            f"the output {output} is an existing file, not a folder; give a folder path (it is created "
            "if missing), e.g. " + str(output.with_name(output.name.split(".")[0] + "_output"))
        )
    for option, folder in inputs.items():
        if folder is None:
            continue
        relation = folder_relation(output, folder)
        if relation is None or (allow_nested and relation != "is"):
            continue
        raise OutputFolderError(
            f"the output folder {output} {relation} the input folder ({option} {folder}): files of the "
            "same name would be replaced or deleted, and a later run would take outputs for inputs. Choose an output "
            f"folder outside the inputs (e.g. "
            f"{Path(folder).resolve().parent / (Path(folder).resolve().name + '_output')})"
        )
