"""The `orchestrate` command line: a thin layer over orchestrator.commands.

Heavy modules (pandas, matplotlib, the engines) are imported inside the commands so that
``orchestrate --help`` stays fast. Every FatalError becomes one line and an exit code here.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import click
import typer

from orchestrator import interrupts
from orchestrator.cli_scale import register_scale_commands
from orchestrator.engines import known_tools
from orchestrator.errors import ConfigError, ExitCode, FatalError
from orchestrator.options import RunOptions

LOG = logging.getLogger("orchestrator")
DEBUG_ENV = "ORCHESTRATE_DEBUG"

app = typer.Typer(
    name="orchestrate",
    help="Load-test a service over HTTP, WebSocket and PostgreSQL with real tools "
    f"({', '.join(known_tools())}) and get one truthful, comparable result.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
tools_app = typer.Typer(help="Install and check the load tools.", no_args_is_help=True)
target_app = typer.Typer(help="The reference target service.", no_args_is_help=True)
app.add_typer(tools_app, name="tools")
app.add_typer(target_app, name="target")


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        typer.echo(f"orchestrate {version('orchestrate')}")
        raise typer.Exit(0)


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Load-test a service over HTTP, WebSocket and PostgreSQL with real tools and get one
    truthful, comparable result."""


ReportDir = Annotated[
    Path, typer.Option("--report-dir", help="Where report directories are written.")
]


def _help(option: str) -> str | None:
    return RunOptions.model_fields[option].description


# The CLI's defaults are the model's.
DEFAULTS = RunOptions()


@app.command()
def run(
    url: Annotated[str, typer.Option("--url", "-u", help=_help("url"))] = DEFAULTS.url,
    tool: Annotated[str | None, typer.Option("--tool", "-t", help=_help("tool"))] = None,
    connections: Annotated[
        int, typer.Option("--connections", "-c", help=_help("connections"))
    ] = DEFAULTS.connections,
    duration: Annotated[
        float, typer.Option("--duration", "-d", help=_help("duration"))
    ] = DEFAULTS.duration,
    method: Annotated[str, typer.Option("--method", "-m", help=_help("method"))] = DEFAULTS.method,
    headers: Annotated[
        list[str] | None, typer.Option("--header", "-H", help=_help("headers"))
    ] = None,
    body: Annotated[str | None, typer.Option("--body", "-b", help=_help("body"))] = None,
    messages: Annotated[list[str] | None, typer.Option("--message", help=_help("messages"))] = None,
    ramp: Annotated[float, typer.Option("--ramp", help=_help("ramp"))] = DEFAULTS.ramp,
    rate: Annotated[float | None, typer.Option("--rate", "-R", help=_help("rate"))] = None,
    open_model: Annotated[
        bool, typer.Option("--open", help=_help("open_model"))
    ] = DEFAULTS.open_model,
    pipelining: Annotated[
        int, typer.Option("--pipelining", "-p", help=_help("pipelining"))
    ] = DEFAULTS.pipelining,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help=_help("workers"))
    ] = DEFAULTS.workers,
    timeout: Annotated[float, typer.Option("--timeout", help=_help("timeout"))] = DEFAULTS.timeout,
    thresholds: Annotated[
        list[str] | None, typer.Option("--threshold", help=_help("thresholds"))
    ] = None,
    pid: Annotated[int | None, typer.Option("--pid", help=_help("pid"))] = None,
    container: Annotated[str | None, typer.Option("--container", help=_help("container"))] = None,
    target_cmd: Annotated[
        str | None, typer.Option("--target-cmd", help=_help("target_cmd"))
    ] = None,
    sample_interval: Annotated[
        float, typer.Option("--sample-interval", help=_help("sample_interval"))
    ] = DEFAULTS.sample_interval,
    name: Annotated[str, typer.Option("--name", help=_help("name"))] = DEFAULTS.name,
    report_dir: ReportDir = DEFAULTS.report_dir,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=_help("quiet"))] = DEFAULTS.quiet,
    allow_hosts: Annotated[
        list[str] | None, typer.Option("--allow-host", help=_help("allow_hosts"))
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help=_help("json_output"))] = False,
    shards: Annotated[int, typer.Option("--shards", help=_help("shards"))] = DEFAULTS.shards,
    agents: Annotated[list[str] | None, typer.Option("--agent", help=_help("agents"))] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help=_help("baseline"))] = None,
) -> None:
    """Run one load test and write its result into a report directory."""
    # The parameters are the fields of RunOptions, by name: the options are built once here
    # (an option not given keeps the model's default).
    given = {option: value for option, value in locals().items() if value is not None}
    from orchestrator.commands.run import run_command

    raise typer.Exit(run_command(RunOptions.from_values(given)))


@app.command()
def suite(
    name: Annotated[str, typer.Argument(help="Suite: full, ci, or one from the config file.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file (default ./orchestrate.yaml).")
    ] = None,
    scale: Annotated[
        float, typer.Option("--scale", min=0.001, help="Multiply every duration (0.05 = 5%).")
    ] = 1.0,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these.")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Skip these.")] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Overrides the config's report_dir.")
    ] = None,
    sample_interval: Annotated[float, typer.Option("--sample-interval", min=0.05)] = 1.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Hide the tools' output.")] = False,
    allow_hosts: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="Also allow loading this host (beside allowed_hosts)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print summary.json to stdout (tables go to stderr).")
    ] = False,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="A report directory this run must be no worse than."),
    ] = None,
) -> None:
    """Run a named suite of scenarios, judge each against its SLA, exit with the verdict."""
    from orchestrator.commands.suite import suite_command

    raise typer.Exit(
        suite_command(
            name,
            config_path=config,
            scale=scale,
            only=only or [],
            skip=skip or [],
            report_dir=report_dir,
            sample_interval=sample_interval,
            quiet=quiet,
            allow_hosts=allow_hosts or [],
            json_output=json_output,
            baseline=baseline,
        )
    )


IMPORT_TOOL_HELP = f"The tool that wrote them: {', '.join(known_tools())}."


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="Output files of the tool.")],
    tool: Annotated[str, typer.Option("--tool", "-t", help=IMPORT_TOOL_HELP)],
    report_dir: ReportDir = DEFAULTS.report_dir,
) -> None:
    """Turn existing output files of a tool into LoadTestResults and a report."""
    from orchestrator.commands.importing import import_command

    raise typer.Exit(import_command(tool, files, report_dir))


@app.command()
def schema(
    which: Annotated[
        str, typer.Argument(help="result (LoadTestResult) or capacity (capacity-report.json).")
    ] = "result",
) -> None:
    """Print the JSON Schema of a result or of the capacity report."""
    import json

    if which == "result":
        from orchestrator.models import LoadTestResult

        schema = LoadTestResult.model_json_schema(by_alias=True)
    elif which == "capacity":
        from orchestrator.conclusions.capacity import capacity_schema

        schema = capacity_schema()
    else:
        raise ConfigError(f"unknown schema {which!r}: choose result or capacity")
    typer.echo(json.dumps(schema, indent=2))


@app.command()
def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A report directory of a run or suite.")],
) -> None:
    """Rebuild every verdict and capacity-report.json from a saved run (nothing is run)."""
    from orchestrator.commands.analyze import analyze_command

    raise typer.Exit(analyze_command(run_dir))


@app.command()
def compare(
    base: Annotated[Path, typer.Argument(help="The baseline's report directory.")],
    new: Annotated[Path, typer.Argument(help="The new run's report directory.")],
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the Markdown here (a PR comment).")
    ] = None,
) -> None:
    """Compare two runs; exit 1 on a regression beyond tolerance and noise.

    Per scenario and endpoint: p50/p95/p99, throughput, errors, target memory and CPU.
    """
    from orchestrator.commands.analyze import compare_command

    raise typer.Exit(compare_command(base, new, markdown))


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="File to write.")] = Path("orchestrate.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config file."""
    from orchestrator.config import render_starter_config

    if path.exists() and not force:
        raise ConfigError(f"{path} exists; use --force to overwrite it")
    path.write_text(render_starter_config(), encoding="utf-8")
    typer.echo(f"wrote {path}")


@tools_app.command("install")
def tools_install(
    force: Annotated[bool, typer.Option("--force", help="Reinstall even if cached.")] = False,
) -> None:
    """Install the pinned Node load tools into the cache, once."""
    from orchestrator import tools

    folder, changed = tools.install(force=force)
    typer.echo(f"{'installed' if changed else 'already installed'}: {folder}")


@tools_app.command(
    "doctor",
    help=f"List the tools ({', '.join(known_tools())}) and what they run on, with version, "
    "path and status.",
)
def tools_doctor(
    tool: Annotated[
        list[str] | None, typer.Option("--tool", help="Fail unless this tool works (repeatable).")
    ] = None,
    suite_name: Annotated[
        str | None, typer.Option("--suite", help="Fail unless the tools of this suite work.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config")] = None,
) -> None:
    from orchestrator.commands.doctor import doctor_command

    raise typer.Exit(doctor_command(tool or [], suite_name, config))


@target_app.command("serve")
def target_serve(
    port: Annotated[int, typer.Option("--port", help="0 picks a free port.")] = 8000,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Added to API calls.")] = 0.0,
    error_rate: Annotated[float, typer.Option("--error-rate", help="Fraction answered 500.")] = 0.0,
    max_in_flight: Annotated[
        int | None, typer.Option("--max-in-flight", help="Requests in service at once (503 over).")
    ] = None,
    leak_bytes_per_request: Annotated[int, typer.Option("--leak-bytes-per-request")] = 0,
) -> None:
    """Serve the reference target (the default target, and the one the tests use)."""
    from orchestrator.reference_target import __main__ as target_main

    argv = ["--host", host, "--port", str(port), "--latency-ms", str(latency_ms)]
    argv += [
        "--error-rate",
        str(error_rate),
        "--leak-bytes-per-request",
        str(leak_bytes_per_request),
    ]
    if max_in_flight is not None:
        argv += ["--max-in-flight", str(max_in_flight)]
    raise typer.Exit(target_main.main(argv))


# Beyond one machine: merge, agent and k8s render live in their own module.
register_scale_commands(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line and an exit code for every orchestration failure."""
    logging.basicConfig(level=logging.WARNING, format="orchestrate: %(levelname)s: %(message)s")
    command = typer.main.get_command(app)
    try:
        # SIGTERM and SIGHUP stop any command as Ctrl-C does (exit 130, one line).
        with interrupts.interruptible():
            # Outside standalone mode typer returns a command's `typer.Exit(code)` instead
            # of exiting: that return value is the exit code.
            code = command.main(args=argv, prog_name="orchestrate", standalone_mode=False)
    except (click.exceptions.Exit, typer.Exit) as exc:
        code = exc.exit_code
    except (click.ClickException, typer.TyperException) as exc:
        # Typer >= 0.20 bundles its own click: its usage errors are TyperExceptions.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"orchestrate: error: {exc.format_message()}", file=sys.stderr)
        return int(ExitCode.USAGE)
    except (KeyboardInterrupt, click.exceptions.Abort, typer.Abort):
        code = ExitCode.INTERRUPTED
    except FatalError as exc:
        print(f"orchestrate: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except Exception as exc:
        # A bug, not a verdict: exit 1 means only "an SLA failed", so never that.
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        print(
            f"orchestrate: internal error: {type(exc).__name__}: {exc} "
            f"(a bug; {DEBUG_ENV}=1 shows the traceback)",
            file=sys.stderr,
        )
        return int(ExitCode.TOOL_OR_TARGET_FAILED)
    if code == ExitCode.INTERRUPTED:
        # Ctrl-C, SIGTERM and SIGHUP alike, whether the run stopped inside the tool (its
        # interrupted result is kept) or elsewhere: one line, exit 130.
        print(f"orchestrate: interrupted ({interrupts.describe()})", file=sys.stderr)
    return int(code) if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
