"""Commands for load beyond one machine: ``merge`` results of several machines, ``agent``
(runs k6 shards for a coordinator), ``k8s render`` (a k6-operator TestRun)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ReportDir = Annotated[
    Path, typer.Option("--report-dir", help="Where report directories are written.")
]


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
    from orchestrator.engines.k6.k8s import render_command

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
    from orchestrator.engines.k6.agent import serve

    raise typer.Exit(serve(listen, allow_host or []))


def register_scale_commands(app: typer.Typer) -> None:
    app.command()(merge)
    app.command()(agent)
    k8s_app = typer.Typer(
        help="Run a scenario on Kubernetes with k6-operator.", no_args_is_help=True
    )
    k8s_app.command("render")(k8s_render)
    app.add_typer(k8s_app, name="k8s")
