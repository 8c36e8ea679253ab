"""The benchmark tables of README.md and docs/benchmarks.md agree with the records in benchmarks/results/ (issue 27).

No data and no compute: the tables are regenerated from the committed records and compared with the files.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import make_tables  # noqa: E402
import records  # noqa: E402


def test_every_table_agrees_with_its_records():
    found = make_tables.differences()
    assert not found, ("a table differs from its records; run 'python benchmarks/make_tables.py' and commit both:\n"
                       + "\n".join(found.values()))


def test_a_changed_figure_changes_the_tables(tmp_path):
    results = Path(shutil.copytree(records.RESULTS_DIR, tmp_path / "results"))
    path = next((results / "fingerprint").glob("*autounet*.json"))
    record = json.loads(path.read_text())
    record["figures"]["wall_s_min"] = 99.0
    path.write_text(json.dumps(record))
    found = make_tables.differences(results)
    assert make_tables.DOCS in found and "99.0" in found[make_tables.DOCS]


def test_markers_name_known_tables_once():
    tables = {name: "x" for name in make_tables.TABLES}
    text = make_tables.DOCS.read_text()
    with pytest.raises(ValueError, match="unknown table"):
        make_tables.rewrite(text + "\n<!-- table:nope -->\n<!-- /table -->\n", tables, make_tables.DOCS)
    with pytest.raises(ValueError, match="marked 0 times"):
        make_tables.rewrite(text.replace("<!-- table:predict -->", ""), tables, make_tables.DOCS)


def test_every_record_is_complete_and_names_a_commit_of_this_repository():
    every = records.read_records()
    assert len(every) > 50
    commits = {r["commit"] for r in every}
    assert all(re.fullmatch(r"[0-9a-f]{40}", commit) for commit in commits), commits
    shallow = subprocess.run(["git", "-C", str(BENCHMARKS), "rev-parse", "--is-shallow-repository"],
                             capture_output=True, text=True).stdout.strip() != "false"
    if not shallow:  # a shallow clone lacks the older commits; the full history has every one
        for commit in commits:
            assert subprocess.run(["git", "-C", str(BENCHMARKS), "cat-file", "-e", f"{commit}^{{commit}}"]).returncode == 0
    for record in every:
        assert record["provenance"] == "measured" or "not" in record["provenance"], record["_path"]
        assert record["machine"]["label"], record["_path"]


def test_a_comparison_takes_the_peer_from_the_same_session_only(tmp_path):
    args = type("Args", (), {"machine": "X", "results": tmp_path, "no_record": False})()
    assert records.compare_with_peer(args, "fingerprint", "wall_s_min", 3.0, "p.py") is None
    old = records.make_record("fingerprint", records.NNUNET, {"wall_s_min": 12.0}, {"interface": "cli"}, machine="X",
                              date="2020-01-01T00:00:00+00:00", tool_version="2.8.1")
    records.write_record(old, tmp_path)
    assert records.compare_with_peer(args, "fingerprint", "wall_s_min", 3.0, "p.py") is None  # another day
    today = records.make_record("fingerprint", records.NNUNET, {"wall_s_min": 12.0}, {"interface": "cli"}, machine="X",
                                tool_version="2.8.1")
    records.write_record(today, tmp_path)
    assert records.compare_with_peer(args, "fingerprint", "wall_s_min", 3.0, "p.py",
                                     settings__interface="cli") == pytest.approx(0.25)
    assert records.compare_with_peer(args, "fingerprint", "wall_s_min", 3.0, "p.py", settings__interface="api") is None


def test_no_benchmark_script_holds_a_peer_figure():
    """nnU-Net's numbers come from records of the same session, never from a constant in a script."""
    for path in [*BENCHMARKS.glob("*.py"), *BENCHMARKS.glob("peer/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.Tuple)):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                assert not any("NNUNET" in name.upper() and "SECONDS" in name.upper() for name in names), (path, names)


def test_examples_in_the_record_and_table_helpers():
    import doctest

    from tables import common

    for module in (records, common):
        assert doctest.testmod(module).failed == 0, module.__name__
