"""orchestrate: load-test a service with real tools and get one truthful result."""

from __future__ import annotations

__version__ = "0.1.0"
