"""The `orchestrate` command line: a thin layer over orchestrator.pipeline.

Heavy modules (pandas, matplotlib, the engines) are imported inside the commands so that
``orchestrate --help`` stays fast. Every FatalError becomes one line and an exit code here.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from orchestrator.errors import ConfigError, ExitCode, FatalError

LOG = logging.getLogger("orchestrator")

app = typer.Typer(
    name="orchestrate",
    help="Load-test a service over HTTP, WebSocket and PostgreSQL with real tools "
    "(autocannon, Artillery, k6, pgbench) and get one truthful, comparable result.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tools_app = typer.Typer(help="Install and check the load tools.", no_args_is_help=True)
target_app = typer.Typer(help="The reference target service.", no_args_is_help=True)
k8s_app = typer.Typer(help="Run a scenario on Kubernetes with k6-operator.", no_args_is_help=True)
app.add_typer(tools_app, name="tools")
app.add_typer(target_app, name="target")
app.add_typer(k8s_app, name="k8s")

DEFAULT_URL = "http://127.0.0.1:8000/health"
ReportDir = Annotated[
    Path, typer.Option("--report-dir", help="Where report directories are written.")
]


@app.command()
def run(
    url: Annotated[str, typer.Option("--url", "-u", help="Target URL (http://, ws://).")] = (
        DEFAULT_URL
    ),
    tool: Annotated[str, typer.Option("--tool", "-t", help="autocannon, k6 or artillery.")] = (
        "autocannon"
    ),
    connections: Annotated[
        int, typer.Option("--connections", "-c", min=1, help="Concurrent connections / users.")
    ] = 10,
    duration: Annotated[float, typer.Option("--duration", "-d", min=0.1, help="Seconds.")] = 10.0,
    method: Annotated[str, typer.Option("--method", "-m")] = "GET",
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="'Name: value', repeatable.")
    ] = None,
    body: Annotated[
        str | None, typer.Option("--body", "-b", help="Request body, or @FILE to read one.")
    ] = None,
    message: Annotated[
        list[str] | None,
        typer.Option("--message", help="WebSocket message to send (repeatable; ws:// URLs)."),
    ] = None,
    ramp: Annotated[float, typer.Option("--ramp", min=0, help="Seconds to ramp up first.")] = 0.0,
    rate: Annotated[
        float | None,
        typer.Option("--rate", "-R", help="Cap on total req/s (with --open: the arrival rate)."),
    ] = None,
    open_model: Annotated[
        bool, typer.Option("--open", help="Open model: --rate arrivals/s whatever the latency.")
    ] = False,
    pipelining: Annotated[int, typer.Option("--pipelining", "-p", min=1)] = 1,
    workers: Annotated[int, typer.Option("--workers", "-w", min=0)] = 0,
    timeout: Annotated[float, typer.Option("--timeout", help="Per-request timeout (s).")] = 10.0,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold", help="SLA such as 'p95 < 500ms' (repeatable); exit 1 if broken."
        ),
    ] = None,
    pid: Annotated[int | None, typer.Option("--pid", help="PID of the target to sample.")] = None,
    container: Annotated[
        str | None,
        typer.Option("--container", help="Docker container (name or id) to sample as the target."),
    ] = None,
    target_cmd: Annotated[
        str | None, typer.Option("--target-cmd", help="Start the target with this command.")
    ] = None,
    sample_interval: Annotated[
        float, typer.Option("--sample-interval", min=0.05, help="Seconds between samples.")
    ] = 1.0,
    name: Annotated[str, typer.Option("--name", help="Scenario name in the report.")] = "run",
    report_dir: ReportDir = Path("load-reports"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Hide the tool's output.")] = False,
    shards: Annotated[
        int,
        typer.Option("--shards", min=1, max=64, help="k6: split the load over N k6 instances."),
    ] = 1,
    agent: Annotated[
        list[str] | None,
        typer.Option("--agent", help="k6: run the shards on `orchestrate agent` URLs (repeat)."),
    ] = None,
) -> None:
    """Run one load test and write its result into a report directory."""
    from orchestrator import pipeline

    request = pipeline.SingleRun(
        url=url,
        tool=tool,
        connections=connections,
        duration=duration,
        method=method,
        headers=pipeline.parse_headers(header or []),
        body=pipeline.read_body(body),
        messages=message or [],
        ramp=ramp,
        rate=rate,
        open_model=open_model,
        pipelining=pipelining,
        workers=workers,
        timeout=timeout,
        thresholds=threshold or [],
        pid=pid,
        container=container,
        target_cmd=target_cmd,
        sample_interval=sample_interval,
        shards=shards,
        agents=agent or [],
        name=name,
        report_dir=report_dir,
        quiet=quiet,
    )
    raise typer.Exit(pipeline.run_single(request))


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
) -> None:
    """Run a named suite of scenarios, judge each against its SLA, exit with the verdict."""
    from orchestrator import suite_run

    raise typer.Exit(
        suite_run.run_suite_command(
            name,
            config_path=config,
            scale=scale,
            only=only or [],
            skip=skip or [],
            report_dir=report_dir,
            sample_interval=sample_interval,
            quiet=quiet,
        )
    )


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="Output files of the tool.")],
    tool: Annotated[str, typer.Option("--tool", "-t", help="autocannon, artillery or k6.")],
    report_dir: ReportDir = Path("load-reports"),
) -> None:
    """Turn existing output files of a tool into LoadTestResults and a report."""
    from orchestrator import pipeline

    raise typer.Exit(pipeline.import_files(tool, files, report_dir))


@app.command()
def schema() -> None:
    """Print the JSON Schema of LoadTestResult."""
    import json

    from orchestrator.models import LoadTestResult

    typer.echo(json.dumps(LoadTestResult.model_json_schema(by_alias=True), indent=2))


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
    """Install the pinned Node tools (autocannon, Artillery) into the cache, once."""
    from orchestrator import tools

    folder, changed = tools.install(force=force)
    typer.echo(f"{'installed' if changed else 'already installed'}: {folder}")


@tools_app.command("doctor")
def tools_doctor(
    tool: Annotated[
        list[str] | None, typer.Option("--tool", help="Fail unless this tool works (repeatable).")
    ] = None,
    suite_name: Annotated[
        str | None, typer.Option("--suite", help="Fail unless the tools of this suite work.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config")] = None,
) -> None:
    """List node, npm, autocannon, artillery, k6 and pgbench with version, path and status."""
    from orchestrator import pipeline

    raise typer.Exit(pipeline.doctor(tool or [], suite_name, config))


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


@app.command()
def merge(
    files: Annotated[
        list[Path], typer.Argument(help="result.json / summary.json files, or raw k6 outputs.")
    ],
    approximate: Annotated[
        bool,
        typer.Option("--approximate", help="Merge results without histograms as labelled ranges."),
    ] = False,
    name: Annotated[str | None, typer.Option("--name", help="Scenario name of the result.")] = (
        None
    ),
    report_dir: ReportDir = Path("load-reports"),
) -> None:
    """Merge results of several machines (or k6 instances) into one result and report."""
    from orchestrator.merge import merge_command

    raise typer.Exit(
        merge_command(files, approximate=approximate, report_dir=report_dir, name=name)
    )


@k8s_app.command("render")
def k8s_render(
    scenario: Annotated[str, typer.Argument(help="A built-in or config scenario.")],
    parallelism: Annotated[
        int, typer.Option("--parallelism", min=1, max=64, help="k6 runner pods.")
    ],
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file (default ./orchestrate.yaml).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the manifests.")] = Path("k8s"),
    namespace: Annotated[str | None, typer.Option("--namespace")] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="k6 image (default: grafana/k6 at our k6).")
    ] = None,
    claim: Annotated[
        str | None,
        typer.Option("--claim", help="An existing ReadWriteMany claim for the raw outputs."),
    ] = None,
    separate: Annotated[
        bool, typer.Option("--separate", help="One runner per node (TestRun separate).")
    ] = False,
    crd: Annotated[
        Path | None, typer.Option("--crd", help="Check the TestRun against this CRD file.")
    ] = None,
) -> None:
    """Write a k6-operator TestRun, its script ConfigMap and a results claim for SCENARIO."""
    from orchestrator.k8s import render_command

    raise typer.Exit(
        render_command(
            scenario,
            parallelism,
            config_path=config,
            out_dir=out,
            namespace=namespace,
            image=image,
            claim=claim,
            separate=separate,
            crd=crd,
        )
    )


@app.command()
def agent(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to serve on (no default: say where).")
    ],
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="A non-loopback host shards may load (repeatable)."),
    ] = None,
) -> None:
    """Run k6 shards handed over by a coordinator (`orchestrate run --agent URL`)."""
    from orchestrator.agent import serve

    raise typer.Exit(serve(listen, allow_host or []))


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line and an exit code for every orchestration failure."""
    logging.basicConfig(level=logging.WARNING, format="orchestrate: %(levelname)s: %(message)s")
    command = typer.main.get_command(app)
    try:
        # Outside standalone mode typer returns a command's `typer.Exit(code)` instead of
        # exiting: that return value is the exit code.
        code = command.main(args=argv, prog_name="orchestrate", standalone_mode=False)
    except (click.exceptions.Exit, typer.Exit) as exc:
        return int(exc.exit_code)
    except (click.ClickException, typer.TyperException) as exc:
        # Typer >= 0.20 bundles its own click: its usage errors are TyperExceptions.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"orchestrate: error: {exc.format_message()}", file=sys.stderr)
        return int(ExitCode.USAGE)
    except (KeyboardInterrupt, click.exceptions.Abort, typer.Abort):
        print("orchestrate: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except FatalError as exc:
        print(f"orchestrate: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
