"""Coded meaning of each segment (category and type, SNOMED CT): a default from the label's name, or the user's JSON."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autounet.errors import DatasetError
from autounet.jsonio import read_json
from autounet.typing import PathType

#: (value, scheme, meaning) of the fallback category and type when a label's name is not a known structure: 3D
#: Slicer and dcmqi use the same "Tissue / Tissue" default for a new segment.
TISSUE = ("85756007", "SCT", "Tissue")
ANATOMICAL_STRUCTURE = ("91723000", "SCT", "Anatomical Structure")
MORPHOLOGICALLY_ABNORMAL = ("49755003", "SCT", "Morphologically Abnormal Structure")
#: Type concepts (of DICOM CID 7151) that are findings rather than anatomy: their category is "Morphologically
#: Abnormal Structure".
_ABNORMAL_TYPES = frozenset({"Neoplasm", "Lesion", "Mass", "Nodule", "Cyst", "Edema", "Necrosis", "Tumor", "Hemorrhage",
                             "Calcification", "Abscess", "Infarct", "Metastasis", "Thrombus"})
#: Spellings that differ from the DICOM concept names.
_SYNONYMS = {"tumor": "Neoplasm", "tumour": "Neoplasm", "cancer": "Neoplasm", "vessel": "BloodVessel",
             "vessels": "BloodVessel", "lesions": "Lesion"}

Code = tuple[str, str, str]


@dataclass(frozen=True)
class SegmentCode:
    """What one segment is: its label (shown by viewers) and its coded category and type ``(value, scheme, meaning)``."""

    label: str
    category: Code
    type: Code


def default_segment_code(name: str) -> SegmentCode:
    """The code for a label called ``name``: a DICOM CID 7151 concept of that name when there is one, else Tissue.

    Parameters
    ----------
    name : str
        The label's name from dataset.json, e.g. ``"liver"``, ``"left kidney"``, ``"tumour"``.

    Examples
    --------
    >>> default_segment_code("liver").type
    ('10200004', 'SCT', 'Liver')
    >>> default_segment_code("tumour").category
    ('49755003', 'SCT', 'Morphologically Abnormal Structure')
    >>> default_segment_code("anterior").type
    ('85756007', 'SCT', 'Tissue')
    """
    from pydicom.sr.codedict import codes

    key = _SYNONYMS.get(name.strip().lower(), "".join(part.capitalize() for part in re.split(r"[\s_\-]+", name.strip()) if part))
    concept = None
    if key and key in codes.cid7151.dir():
        concept = getattr(codes.cid7151, key)
    if concept is None:
        return SegmentCode(name, TISSUE, TISSUE)
    found = (str(concept.value), str(concept.scheme_designator), str(concept.meaning))
    return SegmentCode(name, MORPHOLOGICALLY_ABNORMAL if key in _ABNORMAL_TYPES else ANATOMICAL_STRUCTURE, found)


def segment_codes_for(labels: Mapping[str, int], user_codes: Mapping[str, Any] | None = None,
                      source: str = "segment codes") -> dict[int, SegmentCode]:
    """The code of every foreground label, the user's entry (by label name or value) before the default.

    Parameters
    ----------
    labels : mapping of str to int
        Label name -> value, as in dataset.json (background 0 is skipped).
    user_codes : mapping, optional
        Per label name or value (as a string): ``{"category": CODE, "type": CODE, "label": "shown name"}`` where CODE
        is ``{"CodeValue": ..., "CodingSchemeDesignator": ..., "CodeMeaning": ...}`` or ``[value, scheme, meaning]``.
    source : str
        Where ``user_codes`` came from, for messages.

    Raises
    ------
    DatasetError
        For an entry that names no label or has a malformed code.

    Examples
    --------
    >>> codes = segment_codes_for({"background": 0, "liver": 1},
    ...                           {"liver": {"type": ["10200004", "SCT", "Liver"], "category": ["91723000", "SCT", "Anatomical Structure"]}})
    >>> codes[1].type
    ('10200004', 'SCT', 'Liver')
    """
    user_codes = dict(user_codes or {})
    by_value = {value: name for name, value in labels.items() if value != 0}
    result: dict[int, SegmentCode] = {}
    known_keys = set(by_value.values()) | {str(v) for v in by_value}
    unknown = [key for key in user_codes if str(key) not in known_keys]
    if unknown:
        raise DatasetError(f"{source}: entries {unknown} name no label; labels are "
                           f"{', '.join(f'{v} {n}' for v, n in sorted(by_value.items()))}")
    for value, name in sorted(by_value.items()):
        default = default_segment_code(name)
        entry = user_codes.get(name, user_codes.get(str(value)))
        if entry is None:
            result[value] = default
            continue
        if not isinstance(entry, Mapping):
            raise DatasetError(f"{source}: entry for label {name!r} must be an object with 'category' and 'type'")
        result[value] = SegmentCode(
            label=str(entry.get("label", name)),
            category=_code(entry.get("category"), f"{source}: {name}.category") if "category" in entry else default.category,
            type=_code(entry.get("type"), f"{source}: {name}.type") if "type" in entry else default.type,
        )
    return result


def _code(raw: Any, where: str) -> Code:
    if isinstance(raw, Mapping):
        values = (raw.get("CodeValue"), raw.get("CodingSchemeDesignator"), raw.get("CodeMeaning"))
    elif isinstance(raw, (list, tuple)) and len(raw) == 3:
        values = tuple(raw)
    else:
        values = (None, None, None)
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise DatasetError(f'{where}: a code needs a value, a scheme and a meaning, e.g. ["10200004", "SCT", "Liver"] '
                           f'or {{"CodeValue": "10200004", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Liver"}}; '
                           f"got {raw!r}")
    return (str(values[0]).strip(), str(values[1]).strip(), str(values[2]).strip())


def read_segment_codes(path: PathType) -> dict[str, Any]:
    """Read a user's segment-code JSON file (see :func:`segment_codes_for`)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: segment-code file not found; pass a JSON file mapping label names to codes")
    try:
        data = read_json(path)
    except ValueError as err:
        raise DatasetError(str(err)) from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object mapping label names (or values) to codes")
    return data
