"""k8s render: k6-operator manifests validated against the TestRun CRD's OpenAPI schema (no
cluster), secrets kept out of them, and the rendered script run by real k6 the way a runner
pod runs it (its segment, its secret from the environment)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.engines import k6
from orchestrator.engines.k6 import output as k6_output
from orchestrator.engines.k6.k8s import check_testrun, crd_schema, render, validation_errors
from orchestrator.errors import ConfigError
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, WsFlow, WsMessage

CRD_ENV = "ORCHESTRATE_K6_OPERATOR_CRD"
CRD_PATH = "shared/reference/k6-operator/k6.io_testruns.yaml"


def find_crd() -> Path | None:
    if os.environ.get(CRD_ENV):
        return Path(os.environ[CRD_ENV])
    for folder in Path(__file__).resolve().parents:
        if (folder / CRD_PATH).is_file():
            return folder / CRD_PATH
    return None


CRD = find_crd()
needs_crd = pytest.mark.skipif(
    CRD is None, reason=f"no TestRun CRD copy at ../{CRD_PATH} (or ${CRD_ENV})"
)
TOKEN_HEADER = "Bearer k8s-test-secret-value"


def http_scenario(url: str = "http://api.example.invalid:8000", **kw: Any) -> Scenario:
    return Scenario(
        name="Checkout_API.v2",
        base_url=url,
        endpoints=[
            Endpoint(name="health", path="/health", headers={"Authorization": TOKEN_HEADER})
        ],
        shape=LoadShape.constant(4, 2),
        **kw,
    )


def ws_scenario() -> Scenario:
    return Scenario(
        name="ws",
        protocol="ws",
        base_url="http://api.example.invalid:8000",
        ws=WsFlow(messages=[WsMessage(payload='{"type":"ping"}')]),
        shape=LoadShape.constant(10, 5),
    )


@needs_crd
@pytest.mark.parametrize("parallelism", [1, 4])
def test_rendered_testrun_validates_against_the_crd(parallelism: int) -> None:
    assert CRD is not None
    for scenario in (http_scenario(), ws_scenario()):
        rendered = render(scenario, parallelism, secrets=(TOKEN_HEADER,), namespace="load")
        testrun = rendered.manifests["testrun.yaml"]
        # Through YAML and back, as kubectl reads the file.
        testrun = yaml.safe_load(yaml.safe_dump(testrun))
        assert validation_errors(testrun, crd_schema(CRD)) == []
        check_testrun(testrun, CRD)
        spec = testrun["spec"]
        assert spec["parallelism"] == parallelism
        assert spec["script"]["configMap"]["name"] == f"{rendered.name}-script"
        assert f"--out json=/results/{k6.RAW_NAME}" in spec["arguments"]
        mount = spec["runner"]["volumeMounts"][0]
        assert mount["subPathExpr"] == "$(POD_NAME)"  # one folder per runner pod


@needs_crd
def test_the_check_can_fail() -> None:
    assert CRD is not None
    schema = crd_schema(CRD)
    good = render(http_scenario(), 2).manifests["testrun.yaml"]
    broken: list[tuple[str, dict[str, Any]]] = []
    as_text = json.loads(json.dumps(good))
    as_text["spec"]["parallelism"] = "2"
    broken.append(("parallelism", as_text))
    no_script = json.loads(json.dumps(good))
    del no_script["spec"]["script"]
    broken.append(("script", no_script))
    typo = json.loads(json.dumps(good))
    typo["spec"]["runner"]["volumeMount"] = typo["spec"]["runner"].pop("volumeMounts")
    broken.append(("volumeMount", typo))
    bad_cleanup = json.loads(json.dumps(good))
    bad_cleanup["spec"]["cleanup"] = "always"
    broken.append(("cleanup", bad_cleanup))
    for what, manifest in broken:
        errors = validation_errors(manifest, schema)
        assert errors and any(what in e for e in errors), (what, errors)
        with pytest.raises(ConfigError, match="does not match"):
            check_testrun(manifest, CRD)


def test_manifests_hold_no_secret_and_name_the_variables() -> None:
    rendered = render(http_scenario(), 3, secrets=(TOKEN_HEADER,))
    text = "".join(yaml.safe_dump(m) for m in rendered.manifests.values())
    assert TOKEN_HEADER not in text and "k8s-test-secret-value" not in text
    assert rendered.secrets == {"ORCHESTRATE_SECRET_1": "endpoint 'health' header Authorization"}
    runner = rendered.manifests["testrun.yaml"]["spec"]["runner"]
    assert runner["envFrom"] == [{"secretRef": {"name": f"{rendered.name}-secrets"}}]
    assert rendered.name == "orchestrate-checkout-api-v2"
    assert list(rendered.manifests) == [
        "configmap.yaml",
        "pvc.yaml",
        "testrun.yaml",
        "collector.yaml",
    ]


def test_an_existing_claim_is_used_as_is() -> None:
    rendered = render(http_scenario(), 2, claim="shared-results")
    assert "pvc.yaml" not in rendered.manifests
    volumes = rendered.manifests["testrun.yaml"]["spec"]["runner"]["volumes"]
    assert volumes[0]["persistentVolumeClaim"]["claimName"] == "shared-results"


def test_postgres_and_bad_parallelism_are_refused() -> None:
    pg = Scenario(
        name="db", protocol="postgres", base_url="postgresql://u@127.0.0.1/db",
        shape=LoadShape.constant(1, 1),
    )  # fmt: skip
    with pytest.raises(ConfigError, match="k6 cannot run postgres"):
        render(pg, 2)
    with pytest.raises(ConfigError, match="between 1 and 64"):
        render(http_scenario(), 0)


@needs_crd
def test_cli_renders_a_config_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "orchestrate.yaml"
    config.write_text(
        "target:\n  base_url: http://shop.example.invalid:8080\n"
        "login: null\n"
        "endpoints:\n  home:\n    path: /\n    headers:\n      X-Api-Key: ${SHOP_KEY}\n"
        "scenarios:\n  browse:\n    tool: k6\n    users: 20\n    hold: 60\n",
        encoding="utf-8",
    )
    out = tmp_path / "k8s"
    os.environ["SHOP_KEY"] = "shop-key-never-written"
    try:
        code = main(
            ["k8s", "render", "browse", "--parallelism", "4", "--config", str(config),
             "--out", str(out), "--crd", str(CRD)]
        )  # fmt: skip
    finally:
        del os.environ["SHOP_KEY"]
    assert code == 0
    printed = capsys.readouterr().out
    assert "kubectl apply" in printed and "orchestrate merge" in printed
    assert "ORCHESTRATE_SECRET_1" in printed
    for path in out.iterdir():
        assert "shop-key-never-written" not in path.read_text()
    testrun = yaml.safe_load((out / "testrun.yaml").read_text())
    assert testrun["spec"]["parallelism"] == 4
    unknown = main(["k8s", "render", "nope", "--parallelism", "2", "--config", str(config)])
    assert unknown == 2


@pytest.mark.load
def test_the_runner_script_fills_its_secret_from_the_environment(
    target_factory: Any, tmp_path: Path
) -> None:
    """Run the ConfigMap's script with real k6 as a runner pod would: segment 1 of 2,
    paused off, its secret in the environment; a target that requires the token."""
    target = target_factory("--require-auth")
    login = urllib.request.Request(
        f"{target.url}/api/auth/login",
        data=json.dumps({"email": "test@example.com", "password": "TestPassword123!"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(login, timeout=10) as response:
        token = json.loads(response.read())["token"]
    secret = f"Bearer {token}"
    scenario = Scenario(
        name="auth",
        base_url=target.url,
        endpoints=[
            Endpoint(method="POST", path="/api/session/start", headers={"Authorization": secret})
        ],
        shape=LoadShape.constant(4, 2),
    )
    rendered = render(scenario, 2, secrets=(secret,))
    script_text = rendered.manifests["configmap.yaml"]["data"][k6.SCRIPT_NAME]
    assert token not in script_text
    script = tmp_path / k6.SCRIPT_NAME
    script.write_text(script_text)
    raw = tmp_path / k6.RAW_NAME
    argv = [k6.executable(), "run", "--quiet", "--no-usage-report", "--out", f"json={raw}"]
    argv += ["--execution-segment", "1/2:1", "--execution-segment-sequence", "0,1/2,1"]
    env = {**os.environ, "ORCHESTRATE_SECRET_1": secret}
    done = subprocess.run(
        [*argv, str(script)], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result = k6_output.import_raw(raw)
    assert result.total_requests and result.total_requests > 0
    assert result.status_codes == {"200": result.total_requests}
    assert result.concurrency == 2  # its half of the 4 VUs
