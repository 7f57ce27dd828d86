"""The report in a real headless browser (Debian's chromium): served by uvicorn, and as a file.

Checks the page loads, the SVG charts render with the run's numbers, and a screenshot is taken.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cg_transparency import R3, assert_no_subject_id, cg, chart_values, elements
from httpserver import serving
from test_report_people import expected_people

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert Path(CHROMIUM).exists(), (
        "chromium is missing: apt-get install -y chromium (scripts/test.sh does it)"
    )
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def server(warehouse: Path, tmp_path: Path) -> Iterator[str]:
    with serving(
        lambda port: [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "consentgate.airflow.webapp:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        {**os.environ, "CONSENTGATE_DATABASE": str(warehouse)},
        "/",
        tmp_path / "uvicorn.log",
        timeout=60,
    ) as base:
        yield base


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_served_report_renders_its_charts_in_a_browser(server: str, tmp_path: Path) -> None:
    p = chromium(tmp_path, "--dump-dom", f"{server}/runs/r3")
    assert p.returncode == 0, p.stderr[-2000:]
    dom = p.stdout
    assert "run <code>r3</code>" in dom
    bars = {(a["data-row"], a["data-segment"]): int(a["data-value"]) for a in chart_values(dom, "datasets")}
    assert (bars[("web", "kept")], bars[("web", "withdrawn")], bars[("mail", "withdrawn")]) == (3, 2, 1)
    rendered = [a for t, a in elements(dom) if t == "rect" and a.get("data-segment") == "kept"]
    assert rendered and all(float(a["width"]) >= 0 for a in rendered)
    assert {a["data-x"] for a in chart_values(dom, "trend-rows")} == {"r1", "r2", "r3"}
    # The headline: people per purpose as the browser shows them, against the reference rule's decisions
    # on the story's consent log at r3's cut-off (computed here, not read back from the page's code).
    people = {(a["data-row"], a["data-segment"]): int(a["data-value"]) for a in chart_values(dom, "people")}
    for purpose, normalize in (("ad_targeting", None), ("email_marketing", "lower")):
        for decision, n in expected_people(purpose, normalize, R3).items():
            assert people[(purpose, decision)] == n, (purpose, decision)
    assert people[("ad_targeting", "consented")] == 4 and people[("email_marketing", "withdrawn")] == 1
    assert "Consent enforcement as of" in dom and "what the terms mean" in dom.lower()
    assert_no_subject_id(dom)

    shot = tmp_path / "report.png"
    p = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", f"{server}/")
    assert p.returncode == 0, p.stderr[-2000:]
    assert png_size(shot) == (1280, 2000)
    assert shot.stat().st_size > 30_000  # a blank page compresses to a few kB


def test_report_file_opens_offline(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert cg("report", "--database", warehouse, "--out", out).returncode == 0
    p = chromium(tmp_path, "--dump-dom", out.as_uri())
    assert p.returncode == 0, p.stderr[-2000:]
    reasons = {a["data-segment"]: int(a["data-value"]) for a in chart_values(p.stdout, "reasons")}
    assert reasons["withdrawn"] == 3 and reasons["denied"] == 1
