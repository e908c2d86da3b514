"""``sweep catalog import skypilot`` on small fixtures in SkyPilot's real ``vms.csv`` format
(tests/data/skypilot/<cloud>/vms.csv: AWS with zones, Lambda and Vast without, columns in each cloud's
own order), the offerings it writes used by ``sweep solve``, and the stale-price warning."""

from __future__ import annotations

import csv
import json
import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO

from sweep.inputs.catalog import Offering
from sweep.inputs.freshness import as_of_date, stale_prices_warning
from sweep.inputs.skypilot_catalog import gpu_of

DATA = REPO / "tests" / "data" / "skypilot"
TODAY = date.today().isoformat()


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return {r["offering"]: r for r in csv.DictReader(f)}


def test_import_maps_names_prices_and_regions(run_cli, tmp_path):
    out = tmp_path / "offerings.csv"
    r = run_cli("catalog", "import", "skypilot", DATA / "aws" / "vms.csv", DATA / "lambda" / "vms.csv",
                DATA / "vast" / "vms.csv", "--as-of", TODAY, "-o", out)
    assert r.code == 0, r.err
    rows = _rows(out)
    assert list(next(csv.reader(out.open()))) == ["offering", "provider", "gpu", "gpus_per_node", "price_per_hour",
                                                  "spot_price_per_hour", "max_nodes", "as_of"]
    # SkyPilot's names → the GPU catalog's (A100 = 40 GB; the instance type settles PCIe vs SXM)
    assert rows["aws-p4d.24xlarge"]["gpu"] == "A100-40GB" and rows["aws-p4de.24xlarge"]["gpu"] == "A100-80GB"
    assert rows["aws-g5.12xlarge"]["gpu"] == "A10G" and rows["aws-g5.12xlarge"]["gpus_per_node"] == "4"
    assert rows["lambda-gpu_1x_h100_pcie"]["gpu"] == "H100-PCIe"
    assert rows["lambda-gpu_8x_h100_sxm5"]["gpu"] == "H100-SXM"
    assert rows["vast-4x-H100_SXM-32-65536"]["gpu"] == "H100-SXM"
    # cheapest region, and the cheapest zone's spot price in that region
    p5 = rows["aws-p5.48xlarge"]
    assert float(p5["price_per_hour"]) == 55.04 and float(p5["spot_price_per_hour"]) == 12.4421
    assert "us-east-2 (cheapest region)" in p5["as_of"] and p5["as_of"].startswith(TODAY)
    g5 = rows["aws-g5.xlarge"]  # two us-east-1 zones: spot = the lower one
    assert float(g5["price_per_hour"]) == 1.006 and float(g5["spot_price_per_hour"]) == 0.397
    # no spot market (Lambda; Vast lists 0.00): left empty, so spot = on-demand when loaded
    assert rows["lambda-gpu_1x_a10"]["spot_price_per_hour"] == ""
    assert rows["vast-2x-L40S-32-65536"]["spot_price_per_hour"] == ""
    # unknown accelerators: listed on stderr, never imported; CPU rows ignored silently
    skipped = [ln for ln in r.err_lines if ln.startswith("skipped:")]
    for acc, it in [("Radeon Pro V520", "g4ad.xlarge"), ("GH200", "gpu_1x_gh200"), ("A6000", "gpu_4x_a6000"),
                    ("RTX4090", "1x-RTX_4090-32-65536"), ("H100 NVL", "4x-H100_NVL-32-65536")]:
        assert any(f"'{acc}'" in ln and it in ln for ln in skipped), (acc, r.err)
    assert not any("NVL" in k or "4090" in k or "gh200" in k or "m5." in k for k in rows)
    assert "wrote" in r.out and "16 offerings" in r.out


def test_region_choice_and_file_date(run_cli, tmp_path):
    src = tmp_path / "aws" / "vms.csv"
    src.parent.mkdir()
    shutil.copy(DATA / "aws" / "vms.csv", src)
    stamp = date(2026, 3, 14)
    ts = datetime(2026, 3, 14, 12, tzinfo=UTC).timestamp()
    os.utime(src, (ts, ts))
    out = tmp_path / "o.csv"
    r = run_cli("catalog", "import", "skypilot", src, "--region", "us-west-2", "-o", out)
    assert r.code == 0, r.err
    rows = _rows(out)
    assert set(rows) == {"aws-g5.12xlarge", "aws-g6.xlarge"}  # the instances offered in us-west-2
    assert float(rows["aws-g6.xlarge"]["spot_price_per_hour"]) == 0.3512
    assert all(r["as_of"].startswith("2026-03-14 ") and "chosen region" in r["as_of"] for r in rows.values())
    assert as_of_date(rows["aws-g6.xlarge"]["as_of"]) == stamp


@pytest.mark.parametrize("args, where, what", [
    (["import", "nope"], "import", "must be `skypilot`"),
    (["import", "skypilot", "X/vms.csv"], "-o", "required"),
    (["import", "skypilot", "{bad}", "-o", "{out}"], "{bad}", "not a SkyPilot vms.csv: missing column"),
    (["import", "skypilot", "{aws}", "--as-of", "yesterday", "-o", "{out}"], "--as-of", "must be a date"),
    (["import", "skypilot", "{aws}", "--region", "mars-1", "-o", "{out}"], "--region", "no GPU instance"),
    (["import", "skypilot", "{nocloud}", "-o", "{out}"], "{nocloud}", "cannot tell the cloud"),
    (["gpus", "stray"], "stray", "unexpected argument"),
])
def test_bad_input_one_line_exit_2_nothing_written(run_cli, tmp_path, args, where, what):
    bad = tmp_path / "aws" / "vms.csv"
    bad.parent.mkdir()
    bad.write_text("InstanceType,Price\np5.48xlarge,98.32\n")
    nocloud = tmp_path / "prices.csv"
    shutil.copy(DATA / "aws" / "vms.csv", nocloud)
    subst = {"{bad}": str(bad), "{out}": str(tmp_path / "o.csv"), "{aws}": str(DATA / "aws" / "vms.csv"),
             "{nocloud}": str(nocloud)}
    r = run_cli("catalog", *[subst.get(a, a) for a in args])
    assert r.code == 2, r.err
    errors = [ln for ln in r.err_lines if ln.startswith("error:")]
    assert len(errors) == 1 and errors == [ln for ln in r.err_lines if not ln.startswith("skipped:")], r.err
    assert errors[0].startswith(f"error: {subst.get(where, where)}: ") and what in errors[0], errors
    assert not (tmp_path / "o.csv").exists() and "Traceback" not in r.err


@pytest.mark.parametrize("kind", ["gpus", "offerings", "models"])
def test_listing_commands_still_work(run_cli, kind):
    r = run_cli("catalog", kind)
    assert r.code == 0 and r.err == "" and f" {kind} from " in r.out


def _scenario(tmp_path: Path, offerings: Path) -> Path:
    sc = tmp_path / "sc.toml"
    sc.write_text(f'model = "llama-3.1-8b"\n[catalog]\nofferings = "{offerings}"\nprice = "spot"\n'
                  '[limits]\nbudget = 10\n')
    return sc


def test_solve_uses_imported_offerings_fresh_prices_no_warning(run_cli, tmp_path):
    out = tmp_path / "offerings.csv"
    assert run_cli("catalog", "import", "skypilot", *sorted(DATA.glob("*/vms.csv")), "-o", out).code == 0
    imported = _rows(out)
    r = run_cli("solve", _scenario(tmp_path, out), "--json")
    assert r.code == 0 and r.err == "", r.err  # prices dated today: no warning
    (row,) = [json.loads(ln) for ln in r.out.splitlines()]
    assert row["status"] == "optimal" and row["allocation"]
    for a in row["allocation"]:
        assert a["offering"] in imported and a["gpu"] == imported[a["offering"]]["gpu"]
    # the spot prices of the import are what the fleet pays
    cost = sum(float(imported[a["offering"]]["spot_price_per_hour"] or imported[a["offering"]]["price_per_hour"])
               * a["nodes"] for a in row["allocation"])
    assert cost == pytest.approx(row["cost_per_hour"], abs=1e-3)


def test_stale_prices_warn_once_per_solve_and_not_per_scenario_in_a_sweep(run_cli, tmp_path):
    out = tmp_path / "offerings.csv"
    old = (date.today() - timedelta(days=120)).isoformat()
    assert run_cli("catalog", "import", "skypilot", DATA / "aws" / "vms.csv", "--as-of", old, "-o", out).code == 0
    sc = _scenario(tmp_path, out)
    for args in (["--json"], ["--method", "enumeration,max_throughput", "--budget", "5"]):
        r = run_cli("solve", sc, *args)
        assert r.code == 0, r.err
        warnings = [ln for ln in r.err_lines if ln.startswith("warning:")]
        assert len(warnings) == 1 and "older than 90 days" in warnings[0] and f"dated {old}" in warnings[0], r.err
        assert "sweep catalog import skypilot" in warnings[0]
    job = tmp_path / "job.toml"
    job.write_text('[sweep]\nname = "stale"\nmethods = ["dinkelbach"]\nbase = "sc.toml"\n'
                   '[grid]\n"workload.prompt_tokens" = [256, 512, 1024]\n')
    r = run_cli("run", job, "--backend", "serial", "--out", tmp_path / "res", "-q")
    assert r.code == 0, r.err
    assert sum("older than 90 days" in ln for ln in r.err_lines) <= 1, r.err  # never once per scenario


def test_as_of_labels_and_threshold(monkeypatch):
    assert as_of_date("2025-H1 AWS on-demand") == date(2025, 6, 30)
    assert as_of_date("2024-25 Azure pay-as-you-go") == date(2025, 12, 31)
    assert as_of_date("late-2025 Lambda") == date(2025, 12, 31)
    assert as_of_date("2025-Q3") == date(2025, 9, 30) and as_of_date("2025-02") == date(2025, 2, 28)
    assert as_of_date("2026-11-02 SkyPilot catalog") == date(2026, 11, 2)
    assert as_of_date("from a friend") is None and as_of_date("") is None
    today = date(2026, 1, 1)

    def offer(as_of: str) -> Offering:
        return Offering("o", "aws", "L4", 1, 1, 1, 1, as_of)

    assert stale_prices_warning([offer("2025-10-03")], today) is None  # 90 days: not older
    assert stale_prices_warning([offer("2025-10-02"), offer("undated")], today).startswith(
        "warning: prices older than 90 days: 1 of 2 offerings")
    monkeypatch.setenv("SWEEP_PRICE_MAX_AGE_DAYS", "0")
    assert stale_prices_warning([offer("2020-01-01")], today) is None


def test_variant_rules():
    assert gpu_of("A100-80GB", "runpod", "1x_A100-80GB_SECURE") == "A100-80GB-PCIe"
    assert gpu_of("A100-80GB-SXM", "runpod", "1x_A100-80GB-SXM_SECURE") == "A100-80GB"
    assert gpu_of("A100-80GB", "azure", "Standard_NC24ads_A100_v4") == "A100-80GB-PCIe"
    assert gpu_of("A100-80GB", "azure", "Standard_ND96amsr_A100_v4") == "A100-80GB"
    assert gpu_of("H100", "azure", "Standard_NC40ads_H100_v5") is None  # H100 NVL: not in the GPU catalog
    assert gpu_of("V100", "azure", "Standard_NC6s_v3") == "V100-16GB-PCIe"
    assert gpu_of("RTX4090", "vast", "1x-RTX_4090-32-65536") is None
