"""``orchestrate k8s render``: a scenario as a k6-operator ``TestRun``, collected by ``merge``.

Written files (apply in this order):

- ``configmap.yaml``: the generated k6 script and its config (JSON data);
- ``pvc.yaml``: a ReadWriteMany claim the runners write their raw output to (left out
  with ``--claim NAME``, an existing one);
- ``testrun.yaml``: the ``TestRun``: ``parallelism`` runners, each started by k6-operator
  with its execution segment, paused, then released together; each writes
  ``--out json`` and ``--summary-export`` into its own folder of the claim (a
  ``subPathExpr`` of its pod name), so nothing is overwritten;
- ``collector.yaml``: a pod mounting the claim read-only, to ``kubectl cp`` the outputs
  out after the run, for ``orchestrate merge``.

Secrets never go into these files: a secret header, a body with a password-like key or a
URL with a password is replaced by ``${ENV:ORCHESTRATE_SECRET_n}``, which the script fills
from the runner's environment (a Kubernetes Secret the user creates; only its variable
names are printed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.engines import k6
from orchestrator.engines.k6.shards import shard_config
from orchestrator.errors import ConfigError
from orchestrator.redact import SECRET_HEADERS, redact_text
from orchestrator.scenarios import Scenario

K6_IMAGE = "grafana/k6"
COLLECTOR_IMAGE = "busybox:1.36"
RESULTS = "/results"
SCRIPT_FILE = k6.SCRIPT_NAME
CONFIG_FILE = "k6-config.json"
# The grafana/k6 image runs as this user: the claim's folders must be writable by it.
K6_UID = 12345
SECRET_VAR = "ORCHESTRATE_SECRET_{}"  # noqa: S105 - a variable name, not a value
PLACEHOLDER = re.compile(r"\$\{ENV:ORCHESTRATE_SECRET_\d+\}")
# Fills ${ENV:NAME} in the config's strings from the runner's environment (k6's __ENV), so
# that secrets reach the script without being written into any manifest. Fixed code: the
# config stays JSON data.
FILL_FROM_ENV = (
    "((data) => { const fill = (v) => typeof v === 'string' "
    "? v.replace(/\\$\\{ENV:([A-Z0-9_]+)\\}/g, (m, n) => (n in __ENV ? __ENV[n] : m)) "
    ": Array.isArray(v) ? v.map(fill) "
    ": v !== null && typeof v === 'object' "
    "? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)])) : v; "
    "return fill(data); })({config})"
)


@dataclass
class Rendered:
    name: str
    manifests: dict[str, dict[str, Any]]  # file name -> manifest
    secrets: dict[str, str] = field(default_factory=dict)  # variable -> what it stands for
    notes: list[str] = field(default_factory=list)


def resource_name(scenario: str) -> str:
    """A DNS-1123 name for the TestRun (its jobs and services add suffixes, so kept short)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", scenario.lower()).strip("-") or "scenario"
    return f"orchestrate-{slug}"[:40].rstrip("-")


class _Hider:
    """Replaces secret values in the k6 config by ${ENV:...} placeholders, naming each."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        self.found: dict[str, str] = {}

    def _placeholder(self, what: str) -> str:
        variable = SECRET_VAR.format(len(self.found) + 1)
        self.found[variable] = what
        return f"${{ENV:{variable}}}"

    def value(self, text: str | None, what: str, *, secret: bool = False) -> str | None:
        if text is None:
            return None
        if secret or redact_text(text, self.secrets) != text:
            return self._placeholder(what)
        return text

    def headers(self, headers: dict[str, str], what: str) -> dict[str, str]:
        return {
            k: self.value(v, f"{what} header {k}", secret=k.lower() in SECRET_HEADERS) or ""
            for k, v in headers.items()
        }


def hide_secrets(
    config: dict[str, Any], secrets: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the config with placeholders, {variable: what it stands for})."""
    hider = _Hider(secrets)
    config = json.loads(json.dumps(config))  # a deep copy of plain JSON data
    http = config.get("http")
    for endpoint in (http or {}).get("endpoints", []):
        what = f"endpoint {endpoint['name']!r}"
        endpoint["url"] = hider.value(endpoint["url"], f"{what} URL")
        endpoint["headers"] = hider.headers(endpoint["headers"], what)
        endpoint["body"] = hider.value(endpoint["body"], f"{what} body")
    ws = config.get("ws")
    if ws:
        ws["url"] = hider.value(ws["url"], "WebSocket URL")
        ws["headers"] = hider.headers(ws["headers"], "WebSocket")
        for i, message in enumerate(ws["messages"]):
            payload = hider.value(message["payload"], f"WebSocket message {i + 1}")
            if payload != message["payload"]:
                # The id-injecting copy would hold the secret too: send the text as given.
                message["payload"], message["object"] = payload, None
    return config, hider.found


def render_script(config: dict[str, Any], fill_env: bool) -> str:
    script = k6.render_script(config)
    if not fill_env:
        return script
    data = json.dumps(config, indent=2, ensure_ascii=True, sort_keys=True)
    if data not in script:
        raise ConfigError("the k6 script does not hold its config where expected")
    return script.replace(data, FILL_FROM_ENV.replace("{config}", data), 1)


def render_command(
    scenario_name: str,
    parallelism: int,
    *,
    config_path: Path | None,
    out_dir: Path,
    namespace: str | None = None,
    image: str | None = None,
    claim: str | None = None,
    separate: bool = False,
    crd: Path | None = None,
) -> int:
    """``orchestrate k8s render``: write the manifests, print how to run and collect them."""
    from orchestrator.engines.base import scenario_secrets
    from orchestrator.plan import load_config, plan_scenario, resolve_scenario

    config = load_config(config_path)
    planned = plan_scenario(scenario_name, resolve_scenario(scenario_name, config), config)
    scenario = planned.scenario
    secrets = (*config.secrets(), *scenario_secrets(scenario))
    rendered = render(
        scenario,
        parallelism,
        secrets=secrets,
        namespace=namespace,
        image=image,
        claim=claim,
        separate=separate,
    )
    if crd is not None:
        check_testrun(rendered.manifests["testrun.yaml"], crd)
    written = write(rendered, out_dir)
    for line in recipe(rendered, scenario, planned.tool, config.login is not None, out_dir):
        print(line)
    return 0 if written else 1


def recipe(
    rendered: Rendered, scenario: Scenario, tool: str, has_login: bool, out_dir: Path
) -> list[str]:
    """What to run next, and what the manifests cannot do for the user."""
    name = rendered.name
    ns = ""
    namespace = rendered.manifests["testrun.yaml"]["metadata"].get("namespace")
    if namespace:
        ns = f" -n {namespace}"
    wait_s = int(scenario.shape.total_duration + k6.graceful_seconds(scenario) + 300)
    files = " ".join(f"-f {out_dir / f}" for f in rendered.manifests if f != "collector.yaml")
    lines = [f"wrote {', '.join(rendered.manifests)} to {out_dir}"]
    if tool != k6.NAME:
        lines.append(f"note: scenario {scenario.name} runs on {tool} locally; here it runs on k6")
    if has_login:
        lines.append("note: the config's login step is not run in the cluster: no token is sent")
    host = scenario.base_url.split("://", 1)[-1].split("/", 1)[0]
    if host.startswith(("127.", "localhost", "[::1]")):
        lines.append(f"note: {host} is each runner pod itself; set target.base_url in the config")
    if rendered.secrets:
        lines.append("first create the Secret the runners read (values from your environment):")
        literals = " ".join(f'--from-literal={v}="${v}"' for v in rendered.secrets)
        lines.append(f"  kubectl{ns} create secret generic {name}-secrets {literals}")
        lines += [f"    {v}: {what}" for v, what in rendered.secrets.items()]
    lines += [
        "then:",
        f"  kubectl{ns} apply {files}",
        f"  kubectl{ns} wait testrun/{name} --for=jsonpath='{{.status.stage}}'=finished "
        f"--timeout={wait_s}s",
        f"  kubectl{ns} apply -f {out_dir / 'collector.yaml'}",
        f"  kubectl{ns} wait pod/{name}-collector --for=condition=Ready --timeout=120s",
        f"  kubectl{ns} cp {name}-collector:{RESULTS} ./{name}-results",
        f"  orchestrate merge ./{name}-results/*/{k6.RAW_NAME} --name {scenario.name}",
        f"  kubectl{ns} delete -f {out_dir}",
    ]
    return lines


def _metadata(name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/managed-by": "orchestrate"}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def render(
    scenario: Scenario,
    parallelism: int,
    *,
    secrets: tuple[str, ...] = (),
    namespace: str | None = None,
    image: str | None = None,
    claim: str | None = None,
    storage: str = "1Gi",
    separate: bool = False,
) -> Rendered:
    """The manifests of a k6-operator run of ``scenario`` on ``parallelism`` runners."""
    if scenario.protocol not in k6.TRANSPORTS:
        raise ConfigError(f"k6 cannot run {scenario.protocol} load (scenario {scenario.name!r})")
    if not 1 <= parallelism <= 64:
        raise ConfigError(f"--parallelism must be between 1 and 64, got {parallelism}")
    name = resource_name(scenario.name)
    config, hidden = hide_secrets(shard_config(scenario, parallelism), secrets)
    script = render_script(config, fill_env=bool(hidden))
    # A secret the walk above did not know where to look for (placeholders aside: a
    # password-like key's value is one now).
    probe = PLACEHOLDER.sub("", script)
    if redact_text(probe, secrets) != probe:
        raise ConfigError(
            f"scenario {scenario.name!r}: a secret would be written into the manifest"
        )
    claim_name = claim or f"{name}-results"
    version = k6.version()
    runner: dict[str, Any] = {
        "image": image or (f"{K6_IMAGE}:{version}" if version else K6_IMAGE),
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "K6_NO_USAGE_REPORT", "value": "true"},
        ],
        "securityContext": {"fsGroup": K6_UID},
        "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": claim_name}}],
        # One folder per runner pod: every runner writes the same file names.
        "volumeMounts": [{"name": "results", "mountPath": RESULTS, "subPathExpr": "$(POD_NAME)"}],
    }
    if hidden:
        runner["envFrom"] = [{"secretRef": {"name": f"{name}-secrets"}}]
    arguments = " ".join(
        [
            f"--out json={RESULTS}/{k6.RAW_NAME}",
            f"--summary-export={RESULTS}/{k6.SUMMARY_NAME}",
            "--no-usage-report",
            f"--tag orchestrate_scenario={scenario.name}",
        ]
    )
    manifests: dict[str, dict[str, Any]] = {
        "configmap.yaml": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(f"{name}-script", namespace),
            "data": {SCRIPT_FILE: script, CONFIG_FILE: json.dumps(config, indent=2)},
        },
        "testrun.yaml": {
            "apiVersion": "k6.io/v1alpha1",
            "kind": "TestRun",
            "metadata": _metadata(name, namespace),
            "spec": {
                "parallelism": parallelism,
                "separate": separate,
                "script": {"configMap": {"name": f"{name}-script", "file": SCRIPT_FILE}},
                "arguments": arguments,
                "runner": runner,
            },
        },
        "collector.yaml": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": _metadata(f"{name}-collector", namespace),
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "collector",
                        "image": COLLECTOR_IMAGE,
                        "command": ["sleep", "3600"],
                        "volumeMounts": [
                            {"name": "results", "mountPath": RESULTS, "readOnly": True}
                        ],
                    }
                ],
                "volumes": [
                    {
                        "name": "results",
                        "persistentVolumeClaim": {"claimName": claim_name, "readOnly": True},
                    }
                ],
            },
        },
    }
    if claim is None:
        pvc = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _metadata(claim_name, namespace),
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": storage}},
            },
        }
        # Applied in this order: the claim exists before the runners mount it.
        manifests = {
            "configmap.yaml": manifests.pop("configmap.yaml"),
            "pvc.yaml": pvc,
            **manifests,
        }
    return Rendered(name, manifests, hidden)


def write(rendered: Rendered, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, manifest in rendered.manifests.items():
        path = out_dir / file_name
        path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written


def crd_schema(crd_path: Path, version: str = "v1alpha1") -> dict[str, Any]:
    """The ``openAPIV3Schema`` of a CRD file's ``version``."""
    try:
        crd = yaml.safe_load(crd_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the CRD {crd_path}: {exc}") from None
    for entry in crd.get("spec", {}).get("versions", []):
        if entry.get("name") == version:
            schema = entry.get("schema", {}).get("openAPIV3Schema")
            if isinstance(schema, dict):
                return schema
    raise ConfigError(f"{crd_path} has no openAPIV3Schema for version {version}")


def strict_schema(schema: Any) -> Any:
    """The schema with unknown fields refused where the API server would drop them.

    A structural CRD schema prunes fields it does not know; ``kubectl apply`` (strict field
    validation) refuses them. Objects with ``properties`` and no ``additionalProperties``
    or ``x-kubernetes-preserve-unknown-fields`` get ``additionalProperties: false``.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: strict_schema(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = strict_schema(out["additionalProperties"])
    if "items" in out:
        out["items"] = strict_schema(out["items"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [strict_schema(s) for s in out[key]]
    return out


def validation_errors(manifest: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Where ``manifest`` breaks ``schema`` (strictly: unknown fields too), one line each."""
    import jsonschema

    validator = jsonschema.Draft7Validator(strict_schema(schema))
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in errors]


def check_testrun(manifest: dict[str, Any], crd_path: Path) -> None:
    """ConfigError unless ``manifest`` is a TestRun the CRD at ``crd_path`` accepts."""
    if manifest.get("apiVersion") != "k6.io/v1alpha1" or manifest.get("kind") != "TestRun":
        raise ConfigError("not a k6.io/v1alpha1 TestRun")
    errors = validation_errors(manifest, crd_schema(crd_path))
    if errors:
        raise ConfigError(f"the TestRun does not match {crd_path}: {errors[0]}")
