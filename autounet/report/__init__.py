"""The HTML report of a results folder: dataset, plans, training curves, Dice, overlays, find-best, timings."""

from autounet.report.collect import CaseScore, FoldRun, ReportData, collect_report_data
from autounet.report.write import REPORT_FILE, REPORT_FOLDER, write_report

__all__ = [
    "CaseScore",
    "FoldRun",
    "REPORT_FILE",
    "REPORT_FOLDER",
    "ReportData",
    "collect_report_data",
    "write_report",
]
