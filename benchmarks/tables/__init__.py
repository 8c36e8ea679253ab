"""Renderers of the tables in README.md and docs/benchmarks.md: records (benchmarks/records.py) in, markdown out.

Each public ``*_table`` function takes every record and returns the markdown of one marked block; no function reads
files or measures anything, so ``benchmarks/make_tables.py --check`` (and its test) needs neither data nor compute.
"""
