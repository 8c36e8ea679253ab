"""Generate the benchmark tables of README.md and docs/benchmarks.md from the records in benchmarks/results/.

    python benchmarks/make_tables.py            # rewrite every marked table from the records
    python benchmarks/make_tables.py --check    # exit 1, showing the difference, when a table and its records disagree

A generated table sits between two marker comments, which this script finds and rewrites; text outside them is
left alone::

    <!-- table:fingerprint -->
    | ... generated ... |
    <!-- /table -->

Every name in :data:`TABLES` must be marked exactly once in its file, and every marker must name a table. The
renderers (``benchmarks/tables/``) read nothing but the records, so the check needs no data and no compute
(``tests/test_benchmark_tables.py`` runs it). To publish a new measurement: run the benchmark (it writes a record),
then this script, and commit both.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from records import RESULTS_DIR, read_records  # noqa: E402
from tables import families, speed, status, training  # noqa: E402

REPO = HERE.parent
README = REPO / "README.md"
DOCS = REPO / "docs" / "benchmarks.md"
MARKER = re.compile(r"<!-- table:(?P<name>[a-z0-9_]+) -->\n(?P<body>.*?)<!-- /table -->", re.DOTALL)

#: table name -> (file, renderer of all records).
TABLES: dict[str, tuple[Path, Callable[[list[dict[str, Any]]], str]]] = {
    "status": (README, status.status_table),
    "evaluation": (DOCS, speed.evaluation_table),
    "fingerprint": (DOCS, speed.fingerprint_table),
    "preprocess": (DOCS, speed.preprocess_table),
    "hippocampus_budget": (DOCS, training.budget_table),
    "precision": (DOCS, training.precision_table),
    "output_bias": (DOCS, training.output_bias_table),
    "fivefold": (DOCS, training.fivefold_table),
    "budget_constants": (DOCS, training.budget_constants_table),
    "families_hippocampus_d": (DOCS, partial(families.families_table, dataset="hippocampus", machine="D",
                                             labels=("Anterior", "Posterior"))),
    "families_drive_d": (DOCS, partial(families.families_table, dataset="drive", machine="D", labels=("vessel",),
                                       summary="none")),
    "families_hippocampus_b": (DOCS, partial(families.families_table, dataset="hippocampus", machine="B",
                                             labels=("Anterior", "Posterior"), columns="plain", summary="none")),
    "families_hippocampus_c": (DOCS, partial(families.families_table, dataset="hippocampus", machine="C",
                                             labels=("Anterior", "Posterior"), columns="seed", summary="mean")),
    "families_drive_c": (DOCS, partial(families.families_table, dataset="drive", machine="C", labels=("vessel",),
                                       columns="seed", summary="mean")),
    "predict": (DOCS, speed.predict_table),
    "train_step": (DOCS, speed.train_step_table),
}


def render(records: list[dict[str, Any]]) -> dict[str, str]:
    """``name -> markdown`` of every table in :data:`TABLES`."""
    return {name: renderer(records) for name, (_, renderer) in TABLES.items()}


def rewrite(text: str, tables: dict[str, str], source: Path) -> str:
    """``text`` with the body of every marked table replaced by ``tables[name]``.

    Raises
    ------
    ValueError
        When a marker names no known table, or a table of this file is marked zero times or more than once.
    """
    expected = {name for name, (path, _) in TABLES.items() if path == source}
    found = [match.group("name") for match in MARKER.finditer(text)]
    unknown = sorted(set(found) - set(TABLES))
    if unknown:
        raise ValueError(f"{source}: marker(s) for unknown table(s) {', '.join(unknown)}; known: {', '.join(TABLES)}")
    for name in expected:
        if found.count(name) != 1:
            raise ValueError(f"{source}: table {name} is marked {found.count(name)} times; mark it exactly once with "
                             f"'<!-- table:{name} -->' ... '<!-- /table -->'")
    return MARKER.sub(lambda m: f"<!-- table:{m.group('name')} -->\n{tables[m.group('name')]}\n<!-- /table -->", text)


def differences(results_dir: Path = RESULTS_DIR) -> dict[Path, str]:
    """``file -> unified diff`` of every file whose tables differ from what its records give (empty: all agree)."""
    tables = render(read_records(results_dir))
    found = {}
    for path in sorted({path for path, _ in TABLES.values()}):
        current = path.read_text(encoding="utf-8")
        wanted = rewrite(current, tables, path)
        if wanted != current:
            found[path] = "".join(difflib.unified_diff(
                current.splitlines(keepends=True), wanted.splitlines(keepends=True),
                fromfile=f"{path.name} (now)", tofile=f"{path.name} (from the records)"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 when a table differs from its records")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of records (default benchmarks/results)")
    args = parser.parse_args(argv)
    found = differences(args.results)
    if args.check:
        for diff in found.values():
            print(diff)
        if found:
            print(f"tables differ from their records in {', '.join(str(p.relative_to(REPO)) for p in found)}; "
                  "run: python benchmarks/make_tables.py", file=sys.stderr)
        return 1 if found else 0
    tables = render(read_records(args.results))
    for path in found:
        path.write_text(rewrite(path.read_text(encoding="utf-8"), tables, path), encoding="utf-8")
        print(f"rewrote the tables of {path.relative_to(REPO)}")
    if not found:
        print("every table agrees with its records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
