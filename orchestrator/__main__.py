"""``python -m orchestrator``: the same as the ``orchestrate`` command.

``python -m`` puts the working directory first on ``sys.path``; a folder there named like one
of our packages (a ``reports/`` folder of the user's, say) would then shadow it. The working
directory is dropped unless it is this checkout itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent.parent
if Path.cwd().resolve() != _HERE:
    sys.path[:] = [p for p in sys.path if p not in ("", str(Path.cwd()))]

from orchestrator.cli import main  # noqa: E402 - after the path is fixed

sys.exit(main())
