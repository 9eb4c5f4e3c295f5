"""Conclusions a team can act on, drawn from saved results: holds and knee, a Universal
Scalability Law fit, leak verdicts, bottlenecks with their evidence, and the capacity report.

Pure functions over :class:`~orchestrator.models.LoadTestResult` (and the scenarios that ran):
nothing here runs a tool, so ``orchestrate analyze`` can rebuild every conclusion later.
"""

from __future__ import annotations

from orchestrator.conclusions.capacity import (
    analyse_scenario,
    build_capacity_report,
    capacity_schema,
)
from orchestrator.conclusions.holds import analyse_holds, classify_steps
from orchestrator.conclusions.knee import find_ceiling, find_knee
from orchestrator.conclusions.leak import judge_trend, leak_report
from orchestrator.conclusions.models import CapacityReport, Hold, Knee, LeakReport, UslFit
from orchestrator.conclusions.usl import fit_usl, predict

__all__ = [
    "CapacityReport",
    "Hold",
    "Knee",
    "LeakReport",
    "UslFit",
    "analyse_holds",
    "analyse_scenario",
    "build_capacity_report",
    "capacity_schema",
    "classify_steps",
    "find_ceiling",
    "find_knee",
    "fit_usl",
    "judge_trend",
    "leak_report",
    "predict",
]
