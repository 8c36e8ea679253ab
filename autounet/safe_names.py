"""The one gate through which a name read from a file becomes part of a path.

Case ids (from ``dataset.json``, a preprocessed store's ``manifest.json``, ``splits.json``), the plans'
``data_identifier``, model names and uploaded file names all come from files that someone else may have written.
Any of them used as a file name unchecked can point outside the folder it belongs to (``"../../x"``, ``"/etc/x"``)
or at a hidden or special file. Every such name goes through :func:`checked_name` before it touches the disk; a
name that fails is refused with a message naming where it came from and how to fix it.

Allowed: letters and digits (any script), and ``. _ - + = @ , ( ) [ ]`` and space inside the name; at most
:data:`MAX_NAME_LENGTH` characters; not starting with ``.``, ``-`` or a space, not ending with ``.`` or a space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from autounet.errors import AutounetError

#: Longest accepted name: file systems allow 255 bytes, and names get suffixes such as ``_0000.nii.gz``.
MAX_NAME_LENGTH = 150
#: Punctuation accepted inside a name besides letters and digits.
ALLOWED_PUNCTUATION = frozenset("._-+=@,()[] ")

Source = Union[str, Path, None]


class UnsafeNameError(AutounetError, ValueError):
    """A name from a file cannot be used as a file name (path separators, ``..``, absolute, odd characters)."""


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be used as a file name, or None when it can.

    Parameters
    ----------
    name : object
        The candidate name (anything but a non-empty ``str`` is a problem).

    Returns
    -------
    str or None
        A short reason, e.g. ``"contains a path separator"``.

    Examples
    --------
    >>> name_problem("hippocampus_001") is None
    True
    >>> name_problem("../../etc/passwd")
    "contains a path separator ('/')"
    >>> name_problem("..")
    'is a relative path component'
    """
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a text"
    if not name:
        return "is empty"
    if name in (".", ".."):
        return "is a relative path component"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    for separator in ("/", "\\"):
        if separator in name:
            return f"contains a path separator ({separator!r})"
    if "\x00" in name:
        return "contains a NUL character"
    bad = sorted({ch for ch in name if not (ch.isalnum() or ch in ALLOWED_PUNCTUATION)})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:5])
        return f"contains characters not allowed in a name ({shown})"
    if name[0] in ".- ":
        return f"starts with {name[0]!r}"
    if name[-1] in ". ":
        return f"ends with {name[-1]!r}"
    return None


def checked_name(name: object, what: str = "name", source: Source = None) -> str:
    """``name`` itself when it is safe to use as a file name (see the module docstring); else an error.

    Parameters
    ----------
    name : object
        A name read from a file: a case id, a data identifier, a model name, an uploaded file's name.
    what : str
        What the name is, for the message (``"case id"``, ``"data_identifier"``).
    source : str or Path, optional
        The file the name was read from, named in the message.

    Returns
    -------
    str
        ``name``, unchanged.

    Raises
    ------
    UnsafeNameError
        Naming the value, why it is refused, where it came from and what to do.

    Examples
    --------
    >>> checked_name("BraTS_0001", "case id")
    'BraTS_0001'
    """
    problem = name_problem(name)
    if problem is None:
        return name  # type: ignore[return-value]
    origin = f" in {source}" if source is not None else ""
    shown = repr(name)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise UnsafeNameError(
        f"{what} {shown}{origin} {problem}, so it cannot be used as a file name; rename it to letters, digits and "
        f"{''.join(sorted(ALLOWED_PUNCTUATION - {' '}))} (no path separators, no '..', at most {MAX_NAME_LENGTH} "
        "characters)"
    )


def child_path(folder: Union[str, Path], name: object, what: str = "name", source: Source = None) -> Path:
    """``folder / name`` after :func:`checked_name`: a path that is always directly inside ``folder``.

    Parameters
    ----------
    folder : str or Path
        The folder the file belongs to.
    name : object
        The file name (may carry a suffix such as ``"case_seg.npy"``: check the bare name first where it has one).
    what, source
        As in :func:`checked_name`.

    Returns
    -------
    Path
        ``Path(folder) / name``.

    Examples
    --------
    >>> child_path("out", "case_001.nii.gz").as_posix()
    'out/case_001.nii.gz'
    """
    return Path(folder) / checked_name(name, what, source)
