"""``python -m orchestrator.reference_target``: run the reference target under uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys

from orchestrator.errors import ExitCode
from orchestrator.reference_target.app import serve
from orchestrator.reference_target.faults import TargetSettings

LOG = logging.getLogger(__name__)

__all__ = ["build_parser", "main", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.reference_target",
        description="Run the reference target service that load tests run against.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--latency-jitter-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction 0..1 of API 500s")
    parser.add_argument("--max-in-flight", type=int, default=None)
    parser.add_argument("--leak-bytes-per-request", type=int, default=0)
    parser.add_argument("--require-auth", action="store_true")
    parser.add_argument("--db", dest="db_path", default=None, help="SQLite file (default: memory)")
    return parser


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TargetSettings:
    try:
        return TargetSettings(
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_jitter_ms,
            error_rate=args.error_rate,
            max_in_flight=args.max_in_flight,
            leak_bytes_per_request=args.leak_bytes_per_request,
            db_path=args.db_path,
            require_auth=args.require_auth,
        )
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = _settings(parser, args)
    try:
        serve(settings, args.host, args.port)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except OSError as exc:
        print(f"reference target: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return ExitCode.TOOL_OR_TARGET_FAILED
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
