"""Pair files of two folders by a case name taken from their file names (``{case}_training.tif``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from autounet.errors import DatasetError
from autounet.io.formats import SUPPORTED_EXTENSIONS

#: The placeholder a file-name pattern uses for the case name.
CASE_PLACEHOLDER = "{case}"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a file-name pattern into a regular expression with a ``case`` group.

    A pattern is a glob (``*`` any text, ``?`` one character) with one ``{case}`` placeholder, e.g.
    ``"{case}_training.tif"``; it must match the whole file name, ignoring case. A pattern that contains
    ``(?P<case>`` is used as a regular expression as it is.

    Examples
    --------
    >>> compile_pattern("{case}_manual1.gif").fullmatch("21_manual1.gif")["case"]
    '21'
    >>> compile_pattern("img-{case}.*").fullmatch("img-7.PNG")["case"]
    '7'
    >>> compile_pattern(r"(?P<case>\\d+)\\.png").fullmatch("12.png")["case"]
    '12'
    """
    if "(?P<case>" in pattern:
        try:
            return re.compile(pattern, re.IGNORECASE)
        except re.error as err:
            raise DatasetError(f"pattern {pattern!r} is not a valid regular expression ({err})") from None
    parts = pattern.split(CASE_PLACEHOLDER)
    if len(parts) != 2:
        raise DatasetError(
            f"file-name pattern {pattern!r} must contain {CASE_PLACEHOLDER} exactly once, e.g. '{{case}}_mask.png'"
        )
    return re.compile(_glob_to_regex(parts[0]) + "(?P<case>.+?)" + _glob_to_regex(parts[1]), re.IGNORECASE)


def _glob_to_regex(text: str) -> str:
    return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)


def guess_pattern(names: list[str]) -> str:
    """A pattern for a folder's files: ``{case}`` plus the longest suffix all names share.

    The shared suffix is cut back to start at a non-alphanumeric character, so the case name keeps whole
    words and numbers (``21_training.tif``, ``22_training.tif`` -> ``{case}_training.tif``).

    Examples
    --------
    >>> guess_pattern(["21_training.tif", "22_training.tif", "31_training.tif"])
    '{case}_training.tif'
    >>> guess_pattern(["0.png", "10.png", "1.png"])
    '{case}.png'
    >>> guess_pattern(["a.png", "b.tif"])
    '{case}.*'
    """
    if not names:
        return CASE_PLACEHOLDER + ".*"
    suffix = names[0]
    for name in names[1:]:
        while not name.endswith(suffix):
            suffix = suffix[1:]
    start = next((i for i, ch in enumerate(suffix) if not ch.isalnum()), None)
    suffix = suffix[start:] if start is not None else ""
    if "." not in suffix:  # no shared extension: accept any
        return CASE_PLACEHOLDER + ".*"
    return CASE_PLACEHOLDER + suffix.replace("*", "?").replace("{", "?").replace("}", "?")


def list_image_files(folder: Path) -> list[Path]:
    """Visible files of ``folder`` with a readable image extension, sorted by name."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found; pass an existing folder of images")
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(SUPPORTED_EXTENSIONS)
    )


@dataclass(frozen=True)
class MatchedFiles:
    """The files of one folder that match a pattern, by case name, and those that do not."""

    folder: Path
    pattern: str
    by_case: dict[str, Path] = field(default_factory=dict)
    unmatched: tuple[Path, ...] = ()


def match_folder(folder: Path, pattern: str | None) -> MatchedFiles:
    """Case name -> file for the files of ``folder`` that match ``pattern`` (guessed when None).

    Raises
    ------
    DatasetError
        If two files give the same case name.
    """
    files = list_image_files(folder)
    pattern = pattern or guess_pattern([p.name for p in files])
    regex = compile_pattern(pattern)
    by_case: dict[str, Path] = {}
    unmatched = []
    for path in files:
        match = regex.fullmatch(path.name)
        if match is None:
            unmatched.append(path)
            continue
        case = match["case"]
        if case in by_case:
            raise DatasetError(
                f"{folder}: {by_case[case].name} and {path.name} both give case {case!r} with pattern {pattern!r}; "
                "make the pattern more specific (e.g. include the extension) or remove one file"
            )
        by_case[case] = path
    return MatchedFiles(folder, pattern, by_case, tuple(unmatched))


def pair_folders(first: MatchedFiles, second: MatchedFiles) -> tuple[list[str], list[Path], list[Path]]:
    """Cases found in both folders (sorted), and the files of each folder without a partner.

    Raises
    ------
    DatasetError
        If no case is in both folders; the message lists a few case names of each side and the patterns.
    """
    cases = sorted(set(first.by_case) & set(second.by_case), key=natural_key)
    lonely_first = [p for c, p in first.by_case.items() if c not in second.by_case] + list(first.unmatched)
    lonely_second = [p for c, p in second.by_case.items() if c not in first.by_case] + list(second.unmatched)
    if not cases:
        raise DatasetError(
            f"no image/mask pairs found: {len(first.by_case)} files in {first.folder} gave cases "
            f"{_examples(first.by_case)} with pattern {first.pattern!r}, {len(second.by_case)} files in "
            f"{second.folder} gave cases {_examples(second.by_case)} with pattern {second.pattern!r}. Pass "
            "--image-pattern and --mask-pattern so both give the same case names, e.g. "
            "--image-pattern '{case}_training.tif' --mask-pattern '{case}_manual1.gif'"
        )
    return cases, sorted(lonely_first), sorted(lonely_second)


def _examples(by_case: dict[str, Path], count: int = 4) -> str:
    names = sorted(by_case, key=natural_key)
    return ", ".join(names[:count]) + (", ..." if len(names) > count else "") if names else "(none)"


def natural_key(text: str) -> tuple:
    """Sort ``2`` before ``10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
