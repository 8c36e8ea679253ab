"""Shared pieces of the generated tables: markdown, sessions, and the mark of results older than the current plans."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from records import NNUNET, AUTOUNET, matches, session_of

#: The plans version of the current code (autounet/planners/plans.py, docs/changelog.md). A training result whose
#: record names an older one is marked in every table with the commit it describes until it is measured again.
from autounet.planners.plans import PLANS_VERSION  # noqa: E402

INTERFACES = {"cli": "CLI (start-up included)", "api": "Python API (in-process)"}
RESULTS_FOLDER = "benchmarks/results"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``| a | b |`` lines with a ``|---|`` separator; cells are converted with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def short(commit: str) -> str:
    return commit[:7]


def stale(record: dict[str, Any]) -> bool:
    """Whether ``record`` is a training result of plans older than :data:`PLANS_VERSION`."""
    version = record.get("plans_version")
    return version is not None and version < PLANS_VERSION


def stale_mark(record: dict[str, Any]) -> str:
    """``" (plans v1, at `ab2a7c6`; not re-measured)"`` for an old training result, else ``""``."""
    if not stale(record):
        return ""
    return f" (plans v{record['plans_version']}, at `{short(record['commit'])}`; not re-measured)"


def measured_at(record: dict[str, Any]) -> str:
    """The "measured at" cell: `` `ab2a7c6` (plans v1)`` for an old training result, ``current`` otherwise."""
    return f"`{short(record['commit'])}` (plans v{record['plans_version']})" if stale(record) else "current"


def cpu_text(machine: dict[str, Any]) -> str:
    """``AVX512-BF16, no AMX`` / ``AVX2 only`` / ``not recorded``: the CPU features that decide training speed."""
    flags = machine.get("speed_flags")
    if flags is None:
        return "CPU not recorded"
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-BF16, no AMX"
    return "AVX2 only" if "avx2" in flags else "no AVX2"


def session_text(record: dict[str, Any], with_cpu: bool = False) -> str:
    """``A, 2026-12-02`` (with ``with_cpu``: ``A (AVX512-BF16, no AMX), 2026-12-02``)."""
    label, day = session_of(record)
    cpu = f" ({cpu_text(record['machine'])})" if with_cpu else ""
    return f"{label}{cpu}, {day}"


def sessions_with(records: Sequence[dict[str, Any]], tools: Sequence[str] = (AUTOUNET, NNUNET)) -> list[tuple[str, str]]:
    """Sessions (oldest first) in which every one of ``tools`` has a record among ``records``."""
    found: dict[tuple[str, str], set[str]] = {}
    for record in records:
        found.setdefault(session_of(record), set()).add(record["tool"])
    return [session for session, present in sorted(found.items(), key=lambda item: item[0][1])
            if set(tools) <= present]


def pick_session(records: Sequence[dict[str, Any]], fallback: tuple[str, str] | None = None) -> tuple[str, str] | None:
    """The latest session with records of both tools; else ``fallback`` (when it has records); else the latest one."""
    complete = sessions_with(records)
    if complete:
        return complete[-1]
    if fallback is not None and any(session_of(r) == fallback for r in records):
        return fallback
    return session_of(records[-1]) if records else None


def latest(records: Sequence[dict[str, Any]], **criteria: Any) -> dict[str, Any] | None:
    """The newest record matching ``criteria`` (records are sorted oldest first)."""
    found = [r for r in records if matches(r, **criteria)]
    return found[-1] if found else None


def ratio(ours: float | None, theirs: float | None) -> str:
    """``0.21x`` or ``-``."""
    if ours is None or theirs is None or not theirs:
        return "-"
    return f"{ours / theirs:.2f}x"


def sources_line(records: Sequence[dict[str, Any]], folders: Sequence[str]) -> str:
    """One line under a table: which record folders it comes from and how many records were transcribed."""
    where = ", ".join(f"`{RESULTS_FOLDER}/{folder}/`" for folder in folders)
    kinds = Counter("measured" if r["provenance"] == "measured" else "transcribed" for r in records)
    parts = []
    if kinds["measured"]:
        parts.append(f"{kinds['measured']} measured by the scripts")
    if kinds["transcribed"]:
        commits = sorted({short(r["commit"]) for r in records if r["provenance"] != "measured"})
        parts.append(f"{kinds['transcribed']} transcribed from earlier docs ({', '.join(commits)}), not re-measured")
    count = f"{len(records)} record{'s' if len(records) != 1 else ''}"
    return f"<sub>Generated by `benchmarks/make_tables.py` from {count} in {where}: " \
           f"{'; '.join(parts) or 'none yet'}.</sub>"


def fmt(value: Any, digits: int = 3, default: str = "-") -> str:
    """A number with ``digits`` decimals, halves rounded up as a reader would (6.55 -> 6.6), or ``default`` for None.

    Examples
    --------
    >>> fmt(6.55, 1), fmt(0.8675), fmt(None)
    ('6.6', '0.868', '-')
    """
    if value is None:
        return default
    return str(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def fmt_pair(low: float | None, middle: float | None, digits: int = 2) -> str:
    """``min / median`` with the decimals the values were recorded with (at most ``digits``); one number when they
    are equal, as for a single repeat.

    Examples
    --------
    >>> fmt_pair(2.86, 2.95), fmt_pair(29.7, 30.8), fmt_pair(1.35, 1.5), fmt_pair(58.9, 58.9), fmt_pair(71.752, 80.0)
    ('2.86 / 2.95', '29.7 / 30.8', '1.35 / 1.50', '58.9', '71.75 / 80.00')
    """
    if low is None:
        return "-"
    values = [low] if middle is None or middle == low else [low, middle]
    used = max(len(repr(float(v)).split(".")[1].rstrip("0")) for v in values)
    return " / ".join(fmt(v, min(max(used, 1), digits)) for v in values)


def dice_text(dice: dict[str, float], labels: Sequence[str], digits: int = 3) -> str:
    """``0.868 / 0.859``: Dice of ``labels`` in that order."""
    return " / ".join(fmt(dice.get(label), digits) for label in labels)


Renderer = Callable[[list[dict[str, Any]]], str]
