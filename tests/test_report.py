"""``ragrev report`` (issue 16): one self-contained HTML file from what the
stores' own logs hold, checked as text and, when Debian's ``chromium`` is
installed, in headless Chromium: it loads with no console message and its
chart is drawn (the DOM after scripts ran); the sample project's report is
also screenshotted (``$RAGREV_REPORT_SCREENSHOT`` keeps the PNG)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

pytest.importorskip("plotly")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

A1 = '''
def upgrade(op):
    op.docs.create_collection("documents")
    op.docs.insert("documents", [{"_id": i, "text": f"doc {i}"} for i in range(300)])
    op.docs.validate_all("documents", {"type": "object", "required": ["text"]})
'''

B2 = '''
import os


def shout(doc):
    if os.environ.get("BREAK") == str(doc["_id"]):
        raise ValueError("no text")
    return {**doc, "text": doc["text"].upper()}


def whisper(doc):
    return {**doc, "text": doc["text"].lower()}


def upgrade(op):
    op.docs.transform("documents", shout, inverse=whisper, batch_size=100)
'''


@pytest.fixture
def reported(make_project, mongo_url, tmp_path):
    p = make_project({"docs": {"url": mongo_url, "database": "rep_" + uuid.uuid4().hex[:8]}})
    p.add("a1", None, A1, message="load documents")
    p.add("b2", "a1", B2, message="upper-case the text")
    failed = p.run("upgrade", env={"BREAK": "150"})
    assert failed.wait(timeout=120) == 1, failed.stderr.read()
    out = tmp_path / "report.html"  # a resumed run keeps its record: the failure shows until then
    p.cli("report", "-o", str(out))
    return p, out


def test_the_report_holds_versions_runs_steps_and_gates(reported):
    p, out = reported
    text = out.read_text()
    assert re.search(r"<script[^>]+src=", text) is None and '<link rel="stylesheet"' not in text  # nothing fetched
    assert "<td><code>a1</code> (1 pending)</td>" in text and "revision b2 half-applied" in text
    runs = text.split('<table class="runs"', 1)[1].split("</table>", 1)[0]
    outcomes = re.findall(r'<td class="(done|failed)">', runs)
    assert outcomes == ["failed", "done"], outcomes  # newest first
    assert "ValueError: no text" in runs
    steps = text.split('<table class="steps"', 1)[1].split("</table>", 1)[0]
    assert "<td class=num>300</td>" in steps and "insert(" in steps
    gates = text.split('<table class="gates"', 1)[1].split("</table>", 1)[0]
    assert "validate_all(" in gates and "<td class=\"done\">done</td>" in gates

    p.cli("upgrade", "-q")
    doc = json.loads(p.cli("report", "--json").stdout)
    assert doc["schema_version"] == 1 and doc["kind"] == "report"
    (store,) = doc["stores"]
    assert store["heads"] == ["b2"] and store["at_head"]
    assert [(r["revision"], r["outcome"]) for r in store["runs"]] == [("a1", "done"), ("b2", "done")]
    b2 = store["runs"][1]["steps"][0]
    assert b2["rows"] == 300 and b2["rows_per_s"] > 0


def chromium(html: Path, *args) -> tuple[str, str]:
    """Load ``html`` headless; ``(stdout, stderr)`` (console messages are ``CONSOLE`` lines on stderr)."""
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-dev-shm-usage", "--no-first-run", "--enable-logging=stderr", "--v=0",
                           "--virtual-time-budget=10000", *args, html.as_uri()],
                          capture_output=True, text=True, timeout=180)
    return proc.stdout, proc.stderr


def console(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


@needs_chromium
def test_the_report_renders_in_chromium_without_console_messages(reported):
    _, out = reported
    dom, err = chromium(out, "--dump-dom")
    assert not console(err), console(err)
    chart = dom.split('id="timeline"', 1)[1]
    assert 'class="main-svg"' in chart  # Plotly drew the chart
    legend = re.findall(r'class="legendtext"[^>]*>([^<]+)<', chart)
    assert sorted(legend) == ["done", "failed"], legend
    assert len(re.findall(r'class="point"', chart)) == 2  # one bar per run: a1 done, b2 failed


@needs_chromium
@pytest.mark.slow
def test_screenshot_of_the_sample_projects_report(tmp_path):
    project = tmp_path / "sample"
    shutil.copytree(ROOT / "revisions", project / "revisions")
    shutil.copy(ROOT / "ragrev.toml", project / "ragrev.toml")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for args in (["upgrade", "-q"], ["report", "-o", "report.html"]):
        proc = subprocess.run([sys_executable(), "-m", "ragrev", *args], cwd=project, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    report = project / "report.html"
    text = report.read_text()
    for store in ("vectors", "docs", "eu", "meta"):
        assert f'<h2 id="store-{store}">' in text
    assert '<table class="archives" data-store="docs">' in text and ".jsonl.gz" in text  # the archive revision
    assert "check_recall(" in text and "recall = " in text  # a gate with its number
    png = Path(os.environ.get("RAGREV_REPORT_SCREENSHOT") or tmp_path) / "sample-report.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    _, err = chromium(report, f"--screenshot={png}", "--window-size=1280,1600")
    assert not console(err), console(err)
    assert png.is_file() and png.stat().st_size > 20_000


def sys_executable() -> str:
    import sys

    return sys.executable
