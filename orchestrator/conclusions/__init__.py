"""Conclusions a team can act on, drawn from saved results: holds and knee, a Universal
Scalability Law fit, leak verdicts, bottlenecks with their evidence, and the capacity report.

Pure functions over :class:`~orchestrator.models.LoadTestResult` (and the scenarios that ran):
nothing here runs a tool, so ``orchestrate analyze`` can rebuild every conclusion later.
"""

from __future__ import annotations

# The modules are imported where used (e.g. ``from orchestrator.conclusions.capacity import
# build_capacity_report``): the result model imports ``conclusions.models``, and an eager
# import of the analysis here would make that a cycle.
