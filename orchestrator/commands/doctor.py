"""``orchestrate tools doctor``: which tools work; exit 3 if one that is needed does not."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestrator import tools
from orchestrator.engines import ENGINES, get_engine
from orchestrator.errors import ExitCode, ToolNotFoundError


def doctor_command(
    required: Sequence[str], suite_name: str | None, config_path: Path | None
) -> int:
    from reports.console import print_doctor

    needed = set(required)
    if suite_name is not None:
        from orchestrator.plan import build_suite, load_config

        suite = build_suite(suite_name, load_config(config_path))
        needed |= {planned.tool for planned in suite.scenarios}
    statuses = tools.doctor()
    print_doctor(statuses, needed)
    broken = {s.name for s in statuses if not s.ok}
    for name in list(needed):
        if name in ENGINES:
            needed.update(get_engine(name).NEEDS)
    if needed & broken:
        return int(ExitCode.TOOL_OR_TARGET_FAILED)
    unknown = needed - {s.name for s in statuses}
    if unknown:
        raise ToolNotFoundError(f"unknown tool(s): {', '.join(sorted(unknown))}")
    return int(ExitCode.OK)
