"""``sweep report``: one self-contained HTML page from a real (small, serial) sweep, opened in headless
Chromium: it loads with no console message, its filter script runs, and the screenshot shows the plots."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from engine_jobs import write_job

SCENARIOS = 8  # half of them cannot reach 1M tok/s within $3/h: no fleet


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sweep.cli import main

    tmp = tmp_path_factory.mktemp("rep")
    job = write_job(tmp, name="rep", methods=("dinkelbach", "enumeration", "max_throughput", "pareto"),
                    grid='"catalog.price" = ["on_demand", "spot"]\n"workload.min_throughput" = [0, 1000000]\n')
    assert main(["run", str(job), "--backend", "serial", "--out", str(tmp / "res"), "-q"]) == 0
    return tmp / "res"


def _chromium() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def _browser(args: list[str], page: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium here (tests/run.sh installs it with apt-get when run as root)")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--disable-background-networking", "--disable-component-update",
           f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_page_loads_offline_without_console_errors(run_cli, results, tmp_path):
    page = tmp_path / "report.html"
    r = run_cli("report", results, "-o", page)
    assert r.code == 0 and r.err == "", r.err
    assert f"{SCENARIOS} frontier plots" in r.out and "self-contained" in r.out
    text = page.read_text()
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.I), "external reference"
    assert "@import" not in text and "url(http" not in text
    assert text.count("<svg") == SCENARIOS and "Audit" in text and "Best fleet of each scenario" in text
    assert text.count("no fleet") >= SCENARIOS // 2  # the infeasible half, said so
    shot = tmp_path / "shot.png"
    p = _browser([f"--screenshot={shot}", "--window-size=1280,2400"], page, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    # every console message of our page (Chromium's own pages, chrome://..., log to the console too)
    console = [ln for ln in p.stderr.splitlines() if ":CONSOLE" in ln and "source: chrome://" not in ln]
    assert console == [], console  # no console message at all: no error, no warning
    # the screenshot shows the plots: many colours, the frontier's blue and the exact method's green rings
    from matplotlib.image import imread

    img = (imread(shot)[:, :, :3] * 255).round().astype(int)
    colours = {tuple(c) for c in img.reshape(-1, 3)[::7]}
    assert len(colours) > 150, len(colours)

    def near(rgb: tuple[int, int, int]) -> int:
        return int((abs(img - rgb).sum(axis=2) < 40).sum())

    assert near((0x4C, 0x72, 0xB0)) > 500  # frontier lines and points
    assert near((0x2C, 0xA0, 0x2C)) > 100  # dinkelbach's rings
    # the filter script ran (it fills in the count) and filtering by a parameter hides the other plots
    dom = _browser(["--dump-dom"], page, tmp_path)
    assert dom.returncode == 0 and f"{SCENARIOS} of {SCENARIOS} scenario plots shown" in dom.stdout


def test_filters_and_a_chosen_few(run_cli, results, tmp_path):
    import sweep
    from sweep.results.html_report import build_report

    res = sweep.open_results(results)
    text = build_report(res, max_scenarios=3)
    assert text.count("<svg") == 3 and f"Showing the first 3 of {SCENARIOS} scenarios" in text
    # a filter per varying parameter, with its values
    for col, values in [("model", ["llama-3.1-8b", "mistral-7b"]), ("catalog_price", ["on_demand", "spot"]),
                        ("workload_min_throughput", ["0.0", "1000000.0"])]:
        assert f"data-k='{col}'" in text
        for v in values:
            assert f"<option value='{v}'>" in text
    sid = res.scenarios()["scenario_id"].iloc[-1]
    page = tmp_path / "one.html"
    r = run_cli("report", results, "--scenario", sid[:7], "-o", page)
    assert r.code == 0 and "1 frontier plot;" in r.out
    assert page.read_text().count("<svg") == 1 and f"scenario {sid}" in page.read_text()


@pytest.mark.parametrize("args, where", [
    (["-o", "{tmp}/r.png"], "{tmp}/r.png"),
    (["-o", "{tmp}/nowhere/r.html"], "{tmp}/nowhere/r.html"),
    (["--scenario", "zzzz", "-o", "{tmp}/r.html"], "--scenario"),
    (["--max-scenarios", "0", "-o", "{tmp}/r.html"], "--max-scenarios"),
])
def test_bad_input(run_cli, results, tmp_path, args, where):
    r = run_cli("report", results, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    assert r.err_lines[0].startswith(f"error: {where.replace('{tmp}', str(tmp_path))}: ")
    assert not list(tmp_path.glob("*.html"))
