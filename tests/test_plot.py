"""``sweep plot`` on a real sweep: a real PNG of a scenario's frontier and of the baseline comparison."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from test_query import SCENARIOS, write_job

from sweep import open_results
from sweep.engine.runner import run_sweep

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("plot")
    s = run_sweep(write_job(tmp / "job"), backend="serial", out=str(tmp / "out"), progress=False)
    assert s.failures == 0
    return tmp / "out"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def colours(path: Path) -> int:
    """Distinct colours in the image: a blank or nearly blank picture has a handful."""
    from matplotlib.image import imread

    img = imread(path)
    return len({tuple(px) for px in img.reshape(-1, img.shape[-1])[::7].round(3).tolist()})


def test_frontier_png(swept, run_cli, tmp_path):
    out = tmp_path / "frontier.png"
    r = run_cli("plot", swept, "-o", out)
    assert r.code == 0, r.err
    first = open_results(swept).scenarios()["scenario_id"][0]  # the first scenario has a frontier
    assert f"scenario {first}" in r.out
    w, h = png_size(out)
    assert w >= 900 and h >= 600 and out.stat().st_size > 20_000
    assert colours(out) > 50


def test_scenario_by_prefix_and_unknown(swept, run_cli, tmp_path):
    sid = open_results(swept).scenarios()["scenario_id"][3]
    out = tmp_path / "one.png"
    r = run_cli("plot", swept, "--scenario", sid[:6], "-o", out)
    assert r.code == 0 and sid in r.out
    png_size(out)
    bad = run_cli("plot", swept, "--scenario", "zzzz", "-o", tmp_path / "x.png")
    assert bad.code == 2 and bad.err_lines[-1].startswith("error: --scenario: 'zzzz': no such scenario")
    assert not (tmp_path / "x.png").exists()


def test_infeasible_scenario_and_no_frontier(swept, run_cli, tmp_path):
    """A scenario with no fleet, and a sweep without pareto: still a picture, saying what is missing."""
    sc = open_results(swept).scenarios()
    infeasible = sc.loc[sc["workload_min_throughput"] == 50000, "scenario_id"].iloc[0]
    r = run_cli("plot", swept, "--scenario", infeasible, "-o", tmp_path / "none.png")
    assert r.code == 0, r.err
    png_size(tmp_path / "none.png")
    copy = Path(shutil.copytree(swept, tmp_path / "nofrontier"))
    for p in (copy / "frontier").glob("part-*"):
        p.unlink()
    r = run_cli("plot", copy, "-o", tmp_path / "methods.png")
    assert r.code == 0, r.err
    assert colours(tmp_path / "methods.png") > 50


def test_compare_png(swept, run_cli, tmp_path):
    out = tmp_path / "compare.png"
    r = run_cli("plot", swept, "--compare", "-o", out)
    assert r.code == 0, r.err
    assert "4 scenarios" in r.out  # the feasible ones: the others have no exact optimum
    w, h = png_size(out)
    assert w >= 700 and h >= 600 and colours(out) > 50
    svg = tmp_path / "compare.svg"
    assert run_cli("plot", swept, "--compare", "--where", "catalog.price = 'spot'", "-o", svg).code == 0
    assert svg.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(("args", "what"), [
    (["-o", "{tmp}/a.txt"], "unsupported image type '.txt'"),
    (["-o", "{tmp}/missing/a.png"], "does not exist"),
    (["--where", "TRUE", "-o", "{tmp}/a.png"], "--where: only with --compare"),
])
def test_bad_input(swept, run_cli, tmp_path, args, what):
    r = run_cli("plot", swept, *[a.format(tmp=tmp_path) for a in args])
    assert r.code == 2 and what in r.err and "Traceback" not in r.err


def test_every_scenario_draws(swept, tmp_path):
    from sweep.results.plot import plot_frontier

    res = open_results(swept)
    for sid in res.scenarios()["scenario_id"]:
        assert plot_frontier(res, tmp_path / f"{sid}.png", sid) == sid
    assert len(list(tmp_path.glob("*.png"))) == SCENARIOS
