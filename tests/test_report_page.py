"""report.html of a real suite, opened alone in a real browser.

`orchestrate suite ci --scale 0.05` runs autocannon and Artillery against the reference target;
its report.html is copied ALONE into an empty folder and loaded in headless Chromium (Debian's
``chromium``, installed by scripts/setup.sh). Every picture must have loaded from the file
itself, nothing may be fetched from anywhere else, and the overall verdict must be the first,
biggest thing on the screen. A full-page screenshot is kept beside the copy (and in
``$ORCHESTRATE_SCREENSHOT_DIR`` when set) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chromium import chromium_path, open_page

from reports.writer import write_report

WIDTH, HEIGHT = 1100, 900
PAGE_FACTS = """(async () => {
  await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
  const box = e => { const r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, width: r.width, height: r.height}; };
  const verdict = document.getElementById('verdict');
  const word = verdict.querySelector('.word');
  const style = getComputedStyle(verdict);
  return {
    images: [...document.images].map(i => ({alt: i.alt, width: i.naturalWidth,
      height: i.naturalHeight, complete: i.complete, shown: box(i).width})),
    verdict: {text: verdict.innerText, box: box(verdict), display: style.display,
      visibility: style.visibility, opacity: style.opacity, background: style.backgroundColor,
      color: style.color, fontSize: parseFloat(getComputedStyle(word).fontSize)},
    badgeFontSizes: [...document.querySelectorAll('.verdict')].map(
      b => parseFloat(getComputedStyle(b).fontSize)),
    hrefs: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    headers: [...document.querySelectorAll('th')].map(th => th.innerText),
    firstHeadingTop: document.querySelector('h2').getBoundingClientRect().top,
    text: document.body.innerText,
  };
})()"""

SUITE_CONFIG = 'target: {{base_url: "{url}"}}\n'


@pytest.fixture(scope="module")
def browser_ok() -> None:
    if chromium_path() is None:
        if os.geteuid() != 0:
            pytest.skip("chromium not installed and not root to install it (scripts/setup.sh)")
        pytest.fail("chromium not found: run `bash scripts/setup.sh` (it installs it as root)")


@pytest.fixture(scope="module")
def suite_report(
    reference_target: Any, node_tools: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The report folder of a real `orchestrate suite ci --scale 0.05` run."""
    work = tmp_path_factory.mktemp("suite")
    config = work / "orchestrate.yaml"
    config.write_text(SUITE_CONFIG.format(url=reference_target.url), encoding="utf-8")
    argv = ["suite", "ci", "--scale", "0.05", "-q", "--config", str(config),
            "--report-dir", str(work / "reports")]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    (run_dir,) = [p for p in (work / "reports").iterdir() if not p.is_symlink()]
    return run_dir


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


def look_at(report: Path, folder: Path, name: str) -> tuple[dict[str, Any], list[str], Path]:
    """Copy ``report`` alone into an empty ``folder``, open it, read the facts, screenshot."""
    folder.mkdir()
    alone = folder / "report.html"
    shutil.copyfile(report, alone)
    with open_page(alone.as_uri(), WIDTH, HEIGHT) as page:
        facts = page.evaluate(PAGE_FACTS)
        shot = page.screenshot(folder.parent / f"{name}.png", WIDTH)
        requested = page.requested_urls()
    keep = os.environ.get("ORCHESTRATE_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(keep) / shot.name)
    return facts, requested, shot


def assert_verdict_first_and_biggest(facts: dict[str, Any], word: str) -> None:
    verdict = facts["verdict"]
    assert verdict["text"].startswith(word), verdict["text"]
    box = verdict["box"]
    # Visible on the first screen, above every section heading.
    assert verdict["display"] != "none" and verdict["visibility"] == "visible"
    assert float(verdict["opacity"]) == 1.0
    assert box["top"] >= 0 and box["bottom"] <= HEIGHT and box["height"] > 40
    assert box["bottom"] <= facts["firstHeadingTop"]
    assert box["width"] >= 0.8 * (WIDTH - 100)
    # Bigger than any per-scenario badge, on a solid (not pale) background.
    assert verdict["fontSize"] >= 2 * max(facts["badgeFontSizes"] or [0.0])
    assert verdict["background"] in {"rgb(26, 127, 55)", "rgb(198, 40, 40)", "rgb(154, 103, 0)"}
    assert verdict["color"] == "rgb(255, 255, 255)"


@pytest.mark.load
def test_report_html_alone_shows_every_plot_and_the_verdict_first(
    suite_report: Path, browser_ok: None, tmp_path: Path
) -> None:
    summary = json.loads((suite_report / "summary.json").read_text(encoding="utf-8"))
    facts, requested, shot = look_at(suite_report / "report.html", tmp_path / "alone", "suite")

    # Two scenarios x (timeline + distribution), and the suite's latency overview.
    assert len(facts["images"]) == 5, facts["images"]
    for image in facts["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["shown"] > 600, image  # laid out at the column's width, not a thumbnail
    # Nothing came from anywhere but the file itself.
    page_url = (tmp_path / "alone" / "report.html").as_uri()
    assert {u for u in requested if not u.startswith("data:")} == {page_url}, requested

    assert_verdict_first_and_biggest(facts, "PASS" if summary["exitCode"] == 0 else "FAIL")
    # Raw files by relative path only: they work while the file sits in its folder.
    assert "api-smoke/result.json" in facts["hrefs"]
    assert all(not h.startswith(("/", "file:", "http")) for h in facts["hrefs"]), facts["hrefs"]
    assert str(suite_report) not in facts["text"]
    # WebSocket messages are counted as messages; run metadata is on the page.
    assert "msg/s" in facts["headers"] and "req/s" in facts["headers"]
    run = summary["run"]
    assert run["orchestrateVersion"] and run["host"] in facts["text"]
    assert f"artillery {run['toolVersions']['artillery']}" in facts["text"]
    assert "orchestrate suite ci --scale 0.05" in facts["text"]

    width, height = png_size(shot)
    assert width == WIDTH and height > 3 * HEIGHT


@pytest.mark.load
def test_a_run_that_could_not_start_shows_its_cause_under_the_verdict(
    browser_ok: None, tmp_path: Path
) -> None:
    why = "login POST http://127.0.0.1:9/api/auth/login failed: HTTP 401"
    write_report(tmp_path / "run", "orchestrate suite ci", [], exit_code=3, failure=why)
    facts, requested, _ = look_at(tmp_path / "run" / "report.html", tmp_path / "alone", "failed")
    assert_verdict_first_and_biggest(facts, "FAIL")
    assert f"Cause: {why}" in facts["text"]
    assert f"No scenario ran: {why}." in facts["text"]
    assert [u for u in requested if not u.startswith("data:")] == [
        (tmp_path / "alone" / "report.html").as_uri()
    ]
