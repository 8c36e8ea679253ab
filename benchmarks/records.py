"""Benchmark records: one small JSON file per result under ``benchmarks/results/``, written by every benchmark script.

A record holds the figures of one measurement and what is needed to judge and re-run it: the command, the commit,
the date, the machine (a label, the CPU model, the CPU features that decide training speed, the cores), the torch
version, and the tool measured (autounet or nnU-Net v2) with its version. ``benchmarks/make_tables.py`` builds the
tables of README.md and docs/benchmarks.md from these files alone.

Standard library only: the peer scripts (``benchmarks/peer/``) import this module from nnU-Net's own venv, where
autounet is not installed.

Layout of a record (``RECORD_VERSION`` 1)::

    {"record_version": 1, "benchmark": "fingerprint", "tool": "autounet", "tool_version": "0.1.0",
     "figures": {...},            # the numbers (seconds, Dice, ...), keys naming their unit
     "settings": {...},           # what was measured (interface, precision, batch, dataset, split, ...)
     "conditions": {...},         # the machine's load while measuring
     "command": "python benchmarks/bench_fingerprint.py --cli", "commit": "<40 hex>", "commit_dirty": false,
     "date": "2026-12-02T08:10:00+00:00",
     "machine": {"label": "A", "cpu_model": "...", "speed_flags": ["avx2", "avx512_bf16"], "cores": 2, ...},
     "plans_version": 2,          # training results only: the plans version the run trained with
     "provenance": "measured"}    # or "transcribed from docs/benchmarks.md at <commit>; not re-measured"

Two records are from the **same session** when they carry the same machine label and the same day; a comparison with
the peer takes both figures from one session (:func:`find_session_record`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

RECORD_VERSION = 1
REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
#: The tools a record can describe.
AUTOUNET = "autounet"
NNUNET = "nnU-Net v2"
TOOLS = (AUTOUNET, NNUNET)
#: CPU flags (``/proc/cpuinfo``) that decide how fast training runs: bfloat16 convolutions need AVX512-BF16 or AMX;
#: on AVX2-only CPUs autounet trains in float32 (docs/benchmarks.md, top).
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
#: Environment variable naming the machine when ``--machine`` is not given.
MACHINE_ENV = "AUTOUNET_BENCH_MACHINE"
PROVENANCE_MEASURED = "measured"
REQUIRED_KEYS = ("record_version", "benchmark", "tool", "figures", "settings", "command", "commit", "date", "machine",
                 "provenance")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def cpu_facts() -> dict[str, Any]:
    """The CPU model, the speed-deciding flags present and the cores, from ``/proc/cpuinfo`` (Linux).

    Returns
    -------
    dict
        ``cpu_model``, ``cpu_family`` and ``cpu_model_number`` (strings, ``"unknown"`` where not readable),
        ``speed_flags`` (the members of :data:`SPEED_FLAGS` the CPU has), ``bfloat16_units`` (AVX512-BF16 or AMX),
        ``cores`` (the machine's) and ``cores_usable`` (this process's affinity, e.g. under ``taskset``).
    """
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    present = [flag for flag in SPEED_FLAGS if flag in flags]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    return {
        "cpu_model": fields.get("model name", platform.processor() or "unknown"),
        "cpu_family": fields.get("cpu family", "unknown"),
        "cpu_model_number": fields.get("model", "unknown"),
        "speed_flags": present,
        "bfloat16_units": "avx512_bf16" in present or "amx_bf16" in present,
        "cores": os.cpu_count(),
        "cores_usable": usable,
    }


def package_version(name: str) -> str | None:
    """Installed version of a distribution (``"torch"``, ``"nnunetv2"``, ``"autounet"``), or None."""
    module = sys.modules.get(name)
    if module is not None and isinstance(getattr(module, "__version__", None), str):
        return module.__version__
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_facts(label: str) -> dict[str, Any]:
    """What a record says about the machine: ``label`` plus :func:`cpu_facts`, torch, Python and thread settings.

    Parameters
    ----------
    label : str
        The machine's name in the docs (``"A"``, ``"D"``, ...): records of one label and day are one session.
    """
    return {
        "label": label,
        **cpu_facts(),
        "torch": package_version("torch"),
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "hostname": socket.gethostname(),
    }


def git_commit(repo: Path = REPO) -> tuple[str, bool]:
    """``(commit, dirty)`` of the checkout the benchmark ran from (``("unknown", False)`` outside git)."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status.strip())


def command_line(argv: list[str] | None = None) -> str:
    """The command as a user would type it from the repository root: ``python benchmarks/x.py --flag ...``."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]) if argv else Path("?")
    try:
        script_text = str(script.resolve().relative_to(REPO))
    except ValueError:
        script_text = str(script)
    prefix = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
    return prefix + shlex.join(["python", script_text, *argv[1:]])


def default_machine_label() -> str:
    """``$AUTOUNET_BENCH_MACHINE``, else ``host-<hostname>`` (name the machine with ``--machine`` when publishing)."""
    return os.environ.get(MACHINE_ENV) or f"host-{socket.gethostname()}"


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    """``--machine LABEL`` and ``--results DIR`` (where records go; ``--no-record`` to write none)."""
    parser.add_argument("--machine", default=default_machine_label(),
                        help=f"machine label for the record (default ${MACHINE_ENV} or host-<hostname>); records of "
                             "one label and day are one session")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR,
                        help="folder of benchmark records (default benchmarks/results, committed)")
    parser.add_argument("--no-record", action="store_true", help="print the figures but write no record")


def make_record(
    benchmark: str,
    tool: str,
    figures: dict[str, Any],
    settings: dict[str, Any] | None = None,
    *,
    machine: str | dict[str, Any],
    conditions: dict[str, Any] | None = None,
    command: str | None = None,
    plans_version: int | None = None,
    tool_version: str | None = None,
    date: str | None = None,
    commit: str | None = None,
    provenance: str = PROVENANCE_MEASURED,
    note: str | None = None,
) -> dict[str, Any]:
    """A record of one measurement (see the module docstring for the layout).

    Parameters
    ----------
    benchmark : str
        What was measured, e.g. ``"fingerprint"``, ``"train_step"``, ``"hippocampus_budget"``.
    tool : {"autounet", "nnU-Net v2"}
    figures : dict
        The numbers; keys name their unit (``wall_s_min``, ``dice``, ``step_s``).
    settings : dict, optional
        What was measured: interface (``"cli"``/``"api"``), precision, data pipeline in or out, dataset, split.
    machine : str or dict
        A machine label (the facts of this machine are added) or a complete machine dict (transcriptions).
    conditions : dict, optional
        Load of the machine while measuring.
    command : str, optional
        Default: this process's command line.
    plans_version : int, optional
        For results of training: the plans version trained with.
    tool_version, date, commit : str, optional
        Default: the installed version, now, and this checkout's commit.
    provenance : str
        ``"measured"``, or where a transcribed figure came from.
    note : str, optional
        Anything a reader of the figures must know.

    Returns
    -------
    dict
    """
    if tool not in TOOLS:
        raise ValueError(f"tool must be one of {TOOLS}, got {tool!r}")
    if commit is None:
        commit, dirty = git_commit()
    else:
        dirty = False
    if tool_version is None:
        tool_version = package_version("autounet" if tool == AUTOUNET else "nnunetv2")
    record: dict[str, Any] = {
        "record_version": RECORD_VERSION,
        "benchmark": benchmark,
        "tool": tool,
        "tool_version": tool_version,
        "figures": figures,
        "settings": settings or {},
        "conditions": conditions or {},
        "command": command if command is not None else command_line(),
        "commit": commit,
        "commit_dirty": dirty,
        "date": date or dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine if isinstance(machine, dict) else machine_facts(machine),
        "plans_version": plans_version,
        "provenance": provenance,
    }
    if note:
        record["note"] = note
    return record


def record_path(record: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """``results_dir/<benchmark>/<date>_<tool>_<machine>_<hash>.json``: sorted by date, unique by content."""
    stamp = record["date"][:19].replace(":", "").replace("-", "")
    digest = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:8]
    parts = [stamp, _SAFE.sub("-", record["tool"]), _SAFE.sub("-", str(record["machine"].get("label", "unlabelled"))),
             digest]
    return results_dir / _SAFE.sub("-", record["benchmark"]) / ("_".join(parts) + ".json")


def write_record(record: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``record`` as one JSON file (see :func:`record_path`) and print where; returns the path."""
    check_record(record, "record")
    path = record_path(record, results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"record: {path}", file=sys.stderr, flush=True)
    return path


def check_record(record: Any, source: str) -> None:
    """Raise ValueError naming ``source`` when ``record`` lacks a key of the layout or names an unknown tool."""
    if not isinstance(record, dict):
        raise ValueError(f"{source}: a record is a JSON object, found {type(record).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise ValueError(f"{source}: record lacks {', '.join(missing)}; write records with benchmarks/records.py")
    if record["tool"] not in TOOLS:
        raise ValueError(f"{source}: tool {record['tool']!r} is not one of {TOOLS}")
    if "label" not in record["machine"]:
        raise ValueError(f"{source}: the record's machine has no label")


def read_records(results_dir: Path = RESULTS_DIR, benchmark: str | None = None) -> list[dict[str, Any]]:
    """Every record under ``results_dir`` (of one ``benchmark`` if given), oldest first; each gets ``_path``.

    Raises
    ------
    ValueError
        For a file that is not a valid record (named in the message).
    """
    folder = results_dir / benchmark if benchmark else results_dir
    records = []
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}); fix or delete the file") from None
        check_record(record, str(path))
        record["_path"] = str(path.relative_to(results_dir))
        records.append(record)
    return sorted(records, key=lambda r: (r["date"], r["_path"]))


def session_of(record: dict[str, Any]) -> tuple[str, str]:
    """``(machine label, day)``: records with the same pair were measured in one session."""
    return str(record["machine"].get("label")), record["date"][:10]


def same_session(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two records come from one session (same machine label, same day)."""
    return session_of(a) == session_of(b)


def matches(record: dict[str, Any], **criteria: Any) -> bool:
    """Whether ``record`` has every criterion; keys are dotted paths (``settings__interface`` for nesting).

    Examples
    --------
    >>> matches({"tool": "autounet", "settings": {"interface": "cli"}}, tool="autounet", settings__interface="cli")
    True
    """
    for key, wanted in criteria.items():
        value: Any = record
        for part in key.split("__"):
            value = value.get(part) if isinstance(value, dict) else None
        if value != wanted:
            return False
    return True


def select(records: Iterable[dict[str, Any]], **criteria: Any) -> list[dict[str, Any]]:
    """The records that :func:`matches` ``criteria``, in the given order."""
    return [record for record in records if matches(record, **criteria)]


def find_session_record(
    benchmark: str,
    tool: str,
    machine_label: str,
    day: str | None = None,
    results_dir: Path = RESULTS_DIR,
    **criteria: Any,
) -> dict[str, Any] | None:
    """The latest record of ``tool`` for ``benchmark`` from the session (``machine_label``, ``day``; default today).

    Used by a benchmark to put the peer's figure next to its own: only a figure from the same machine on the same
    day counts. ``criteria`` narrow the match as in :func:`matches`.
    """
    day = day or dt.datetime.now().astimezone().date().isoformat()
    found = [r for r in read_records(results_dir, benchmark)
             if r["tool"] == tool and session_of(r) == (machine_label, day) and matches(r, **criteria)]
    return found[-1] if found else None


def emit(record: dict[str, Any], args: argparse.Namespace | None = None) -> Path | None:
    """Print ``record`` as one JSON line and write it unless ``args.no_record``; the path written or None."""
    print(json.dumps(record), flush=True)
    if args is not None and getattr(args, "no_record", False):
        return None
    results_dir = getattr(args, "results", RESULTS_DIR) if args is not None else RESULTS_DIR
    return write_record(record, results_dir)


def record_measurement(
    args: argparse.Namespace,
    benchmark: str,
    figures: dict[str, Any],
    settings: dict[str, Any] | None = None,
    *,
    tool: str = AUTOUNET,
    conditions: dict[str, Any] | None = None,
    plans_version: int | None = None,
    note: str | None = None,
    tool_version: str | None = None,
) -> dict[str, Any]:
    """Make the record of a measurement this process just took (machine from ``args.machine``), print it, write it
    unless ``args.no_record``; returns the record.

    Parameters
    ----------
    args : argparse.Namespace
        With ``machine``, ``results`` and ``no_record`` (:func:`add_record_arguments`).
    benchmark, figures, settings, tool, conditions, plans_version, note, tool_version
        As for :func:`make_record`; nnU-Net timed from autounet's venv gets its version from the peer venv.
    """
    if tool == NNUNET and tool_version is None and package_version("nnunetv2") is None:
        tool_version = peer_version()
    record = make_record(benchmark, tool, figures, settings, machine=args.machine, conditions=conditions,
                         plans_version=plans_version, note=note, tool_version=tool_version)
    emit(record, args)
    return record


def peer_version(venv: Path = REPO / "benchmarks" / "_peer" / "venv") -> str | None:
    """nnunetv2's version in the peer venv (for nnU-Net timed from autounet's venv), or None."""
    try:
        return subprocess.run([str(venv / "bin" / "python"), "-c",
                               "import importlib.metadata as m; print(m.version('nnunetv2'))"],
                              capture_output=True, text=True, check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def compare_with_peer(
    args: argparse.Namespace, benchmark: str, figure: str, value: float, peer_script: str, **criteria: Any
) -> float | None:
    """Print ``value`` against nnU-Net's ``figure`` from a record of this session (same machine label, today).

    Returns the ratio, or None (and says which peer script to run in this session) when there is no such record:
    a peer figure from another machine or day is never used.
    """
    peer = find_session_record(benchmark, NNUNET, args.machine, results_dir=getattr(args, "results", RESULTS_DIR),
                               **criteria)
    if peer is None or peer["figures"].get(figure) in (None, 0):
        print(f"no nnU-Net record of {benchmark} from this session (machine {args.machine}, today): run "
              f"'python3 {peer_script} --machine {args.machine}' on this machine today for the comparison",
              file=sys.stderr, flush=True)
        return None
    ratio = value / peer["figures"][figure]
    print(f"{benchmark}: {value:.3f} against nnU-Net's {peer['figures'][figure]:.3f} ({figure}, record "
          f"{peer['_path']}): {ratio:.2f}x", file=sys.stderr, flush=True)
    return ratio
