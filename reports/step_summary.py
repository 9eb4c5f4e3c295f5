"""The run's Markdown summary on a CI job's page: appended to ``$GITHUB_STEP_SUMMARY``.

GitHub Actions renders whatever a step appends to the file that variable names on the run's
summary page; outside such a job the variable is unset and nothing happens.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from reports.markdown import verdict_line as markdown_verdict

LOG = logging.getLogger(__name__)

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
# GitHub refuses a step's summary above 1 MiB; leave room for what other steps append.
MAX_BYTES = 512 * 1024


def verdict_line(exit_code: int | None) -> str | None:
    """One line with the overall verdict, or None when the run has none (an import)."""
    return None if exit_code is None else markdown_verdict(exit_code)


def step_summary_markdown(markdown: str, exit_code: int | None, run_dir: Path) -> str:
    """The report's Markdown with the overall verdict and the report folder's name first
    (summary.md already starts with the verdict: it is not repeated)."""
    lines = [line for line in (verdict_line(exit_code),) if line and line not in markdown]
    lines.append(f"Report directory: `{run_dir.name}`")
    head, _, rest = markdown.partition("\n")
    if head.startswith("# "):
        # After the title, each line its own paragraph.
        text = "\n\n".join([head, *lines]) + "\n" + rest
    else:
        text = "\n\n".join([*lines, markdown])
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        cut = encoded[:MAX_BYTES].decode("utf-8", errors="ignore")
        text = cut + f"\n\n… cut at {MAX_BYTES:,} bytes: the whole text is summary.md.\n"
    return text


def append_step_summary(text: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``text`` to the job summary when ``$GITHUB_STEP_SUMMARY`` is set.

    Returns the file written, or None. A failure here is only a warning: the report files
    are already written, and the job summary is a convenience.
    """
    target = (os.environ if env is None else env).get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as handle:
            # A blank line first: whatever an earlier step appended ends its paragraph.
            handle.write("\n" + text.strip("\n") + "\n")
    except OSError as exc:
        LOG.warning("job summary not written to %s: %s", path, exc)
        return None
    return path
