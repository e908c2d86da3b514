"""The design note's Python interface: ``sweep.Solver`` prints what the note prints, and answers honestly."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

import sweep
from sweep import InputError, Solver, load_scenario

REPO = Path(__file__).resolve().parents[1]
COUNTEREXAMPLE = REPO / "jobs" / "counterexample.toml"

# The note's "Expected Results" printout, verbatim (optimal-vs-heuristic-cost-per-token.md).
NOTE = """\
Testing 15 cost budgets...

[1/15] Budget: $0.30/hour
  Result: 985 tokens/s, $0.30/h, $0.000000085/token
  ✓ New best $/token!

[2/15] Budget: $0.42/hour
  Result: 985 tokens/s, $0.30/h, $0.000000085/token

[3/15] Budget: $0.59/hour
  Result: 1773 tokens/s, $0.60/h, $0.000000094/token

OPTIMAL $/TOKEN FOUND
Best $/token: $0.000000085
  Throughput: 985 tokens/sec
  Cost: $0.30/hour
  Pipeline stages: 1

Pareto Frontier (all solutions):
  $0.000000085/token: 985 tokens/s, $0.30/h    ← OPTIMAL
  $0.000000094/token: 1773 tokens/s, $0.60/h
  $0.000000106/token: 3152 tokens/s, $1.20/h
  $0.000000129/token: 8583 tokens/s, $4.00/h
"""

# One pattern per kind of line the note prints.
LINE = {
    "testing": re.compile(r"^Testing (\d+) cost budgets\.\.\.$"),
    "budget": re.compile(r"^\[(\d+)/(\d+)\] Budget: \$(\d+\.\d\d)/hour$"),
    "result": re.compile(r"^  Result: (\d+(?:\.\d+)?) tokens/s, \$(\d+\.\d\d)/h, \$(0\.\d{9})/token$"),
    "new_best": re.compile(r"^  ✓ New best \$/token!$"),
    "found": re.compile(r"^OPTIMAL \$/TOKEN FOUND$"),
    "best": re.compile(r"^Best \$/token: \$(0\.\d{9})$"),
    "throughput": re.compile(r"^  Throughput: (\d+(?:\.\d+)?) tokens/sec$"),
    "cost": re.compile(r"^  Cost: \$(\d+\.\d\d)/hour$"),
    "stages": re.compile(r"^  Pipeline stages: (\d+(, \d+)*)$"),
    "pareto": re.compile(r"^Pareto Frontier \(all solutions\):$"),
    "frontier": re.compile(r"^  \$(0\.\d{9})/token: (\d+(?:\.\d+)?) tokens/s, \$(\d+\.\d\d)/h(    ← OPTIMAL)?$"),
}


def kind(line: str) -> str | None:
    return next((k for k, p in LINE.items() if p.match(line)), None)


def test_the_patterns_match_the_notes_own_printout() -> None:
    kinds = [kind(ln) for ln in NOTE.splitlines() if ln]
    assert None not in kinds
    assert kinds.count("frontier") == 4 and kinds.count("budget") == 3


@pytest.fixture(scope="module")
def enumeration_run() -> tuple[Solver, dict, list[str]]:
    out = io.StringIO()
    solver = Solver(str(COUNTEREXAMPLE), out=out)
    solution = solver.solve_optimal_cost_per_token()
    return solver, solution, out.getvalue().splitlines()


def test_enumeration_prints_the_notes_lines(enumeration_run) -> None:
    solver, sol, lines = enumeration_run
    assert lines[0] == "Testing 15 cost budgets..."
    assert lines[1] == ""
    budgets = [LINE["budget"].match(ln) for ln in lines if kind(ln) == "budget"]
    assert [int(m[1]) for m in budgets] == list(range(1, 16)) and {m[2] for m in budgets} == {"15"}
    # the note's budgets: 0.30, 0.42, 0.59, 0.83, … 34.65
    assert [m[3] for m in budgets][:4] == ["0.30", "0.42", "0.59", "0.83"] and budgets[-1][3] == "34.65"
    assert "[3/15] Budget: $0.59/hour" in lines
    # every budget block: a Budget line, then a Result line, then maybe "✓ New best"; blank lines between
    i = 2
    seen_best = 0
    for n in range(1, 16):
        assert kind(lines[i]) == "budget" and lines[i].startswith(f"[{n}/15]"), lines[i]
        assert kind(lines[i + 1]) == "result" or lines[i + 1].startswith("  Result: no fleet within $"), lines[i + 1]
        i += 2
        if lines[i] and kind(lines[i]) == "new_best":
            seen_best += 1
            i += 1
        assert lines[i] == ""
        i += 1
    assert seen_best >= 1
    block = lines[i:i + 5]
    assert [kind(ln) for ln in block] == ["found", "best", "throughput", "cost", "stages"]
    assert block[1] == f"Best $/token: ${sol['cost_per_token']:.9f}"
    assert block[2] == f"  Throughput: {sol['throughput_tokens_per_sec']:g} tokens/sec"
    assert block[3] == f"  Cost: ${sol['cost_per_hour']:.2f}/hour"
    assert block[4] == "  Pipeline stages: 1"
    assert lines[i + 5] == "" and kind(lines[i + 6]) == "pareto"
    frontier = []
    j = i + 7
    while j < len(lines) and kind(lines[j]) == "frontier":
        frontier.append(LINE["frontier"].match(lines[j]))
        j += 1
    assert len(frontier) >= 3
    assert [m[4] is not None for m in frontier].count(True) == 1  # one "← OPTIMAL"
    marked = next(m for m in frontier if m[4])
    assert (int(marked[2]), marked[3]) == (sol["throughput_tok_s"], f"{sol['cost_per_hour']:.2f}")
    costs = [float(m[3]) for m in frontier]
    assert costs == sorted(costs)


def test_enumeration_says_it_is_a_baseline_and_gives_the_exact_optimum(enumeration_run) -> None:
    solver, sol, lines = enumeration_run
    honest = [ln for ln in lines if "exact optimum (dinkelbach)" in ln]
    assert len(honest) == 1
    assert "baseline, not guaranteed optimal" in honest[0]
    exact = sweep.Solver(str(COUNTEREXAMPLE), verbose=False).solve_exact()
    assert f"${exact['cost_per_token']:.9f}/token" in honest[0]
    assert f"{sol['gap_pct']:+.2f}% above it" in honest[0]
    assert sol["gap_pct"] > 5  # the shipped example: the enumeration misses the optimum
    assert sol["exact_cost_per_token"] == exact["cost_per_token"] < sol["cost_per_token"]
    assert lines[-1] == honest[0]


def test_solution_dict(enumeration_run) -> None:
    solver, sol, _ = enumeration_run
    assert sol is solver.solution
    assert sol["method"] == "enumeration" and sol["status"] == "optimal"
    assert sol["throughput_tok_s"] == sol["throughput_tokens_per_sec"] > 0
    assert sol["cost_per_token"] == pytest.approx(sol["cost_per_hour"] / (3600 * sol["throughput_tok_s"]), rel=1e-12)
    assert sol["allocation"] and all(
        {"offering", "gpu", "tp", "pp", "replicas", "nodes"} <= set(a) for a in sol["allocation"])
    assert sol["solves"] >= 15
    assert solver.result is not None and len(solver.result.points) == 15


def test_budget_points_as_a_list_or_a_count() -> None:
    out = io.StringIO()
    s = Solver(COUNTEREXAMPLE, out=out)
    s.solve_optimal_cost_per_token([0.5, 7.25, 9.0], check_exact=False)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Testing 3 cost budgets..."
    assert [ln for ln in lines if kind(ln) == "budget"] == [
        "[1/3] Budget: $0.50/hour", "[2/3] Budget: $7.25/hour", "[3/3] Budget: $9.00/hour"]
    assert not any("exact optimum" in ln for ln in lines)
    exact = Solver(COUNTEREXAMPLE, verbose=False).solve_exact()
    assert s.solution["cost_per_token"] == exact["cost_per_token"]  # $7.25 admits the optimum's $7.21 fleet
    out = io.StringIO()
    Solver(COUNTEREXAMPLE, out=out).solve_optimal_cost_per_token(4, check_exact=False)
    assert out.getvalue().startswith("Testing 4 cost budgets...")
    with pytest.raises(ValueError):
        Solver(COUNTEREXAMPLE, verbose=False).solve_optimal_cost_per_token([])


def test_the_other_methods_fill_the_solution() -> None:
    s = Solver(load_scenario(COUNTEREXAMPLE), verbose=False)  # a Scenario object works too
    exact = dict(s.solve_exact())
    assert exact["method"] == "dinkelbach" and exact["status"] == "optimal"
    w = s.solve()
    assert w["method"] == "weighted" and w["throughput_tok_s"] > 0 and w["cost_per_token"] >= exact["cost_per_token"]
    it = s.solve_for_min_cost_per_token(target_cpt=exact["cost_per_token"] / 2)
    assert it["method"] == "iterative" and it["cost_per_token"] >= exact["cost_per_token"]
    assert s.result.path[0]["step"] == "grow"  # a target below the optimum: the first budget admits nothing
    default = s.solve_for_min_cost_per_token()  # the config's max_cost_per_token (1e-6 by default)
    assert default["method"] == "iterative" and default["status"] == "optimal"


def test_iterative_and_weighted_print_their_progress() -> None:
    out = io.StringIO()
    s = Solver(COUNTEREXAMPLE, out=out)
    s.solve_for_min_cost_per_token(target_cpt=5e-8)
    text = out.getvalue()
    assert "Iterative $/token search (target $0.000000050/token)" in text
    assert "[grow] Budget:" in text and "stopped:" in text
    s.solve()
    assert "Weighted objective (w=0.5):" in out.getvalue()


def test_the_notes_config_csv(small_scenario, tmp_path: Path) -> None:
    """The note's config.csv (key,value rows, its own key names) loads through Solver."""
    toml_path = small_scenario()
    csv_path = toml_path.parent / "config.csv"
    csv_path.write_text(
        "parameter,value\n"
        "# the note's keys\n"
        "model,m1\n"
        "catalog.gpus,gpus.csv\ncatalog.offerings,offerings.csv\ncatalog.models,models.csv\n"
        "perf.source,profile\nperf.profile,profile.csv\n"
        "max_cost_per_token,0.001\n"
        "cost_throughput_weight,0.95\n"
    )
    s = Solver(csv_path, verbose=False)
    assert s.params.target_cpt == 0.001 and s.params.weight == 0.95
    sol = s.solve_optimal_cost_per_token(check_exact=False)
    assert sol["status"] == "optimal" and sol["cost_per_token"] > 0


def test_bad_config_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        Solver(tmp_path / "missing.toml")


def test_exported() -> None:
    assert "Solver" in sweep.__all__ and sweep.Solver is Solver


def test_the_original_solvers_config_folder() -> None:
    """The note's solver read a folder (config.csv, gpu_pool.csv, network_bandwidth.csv); so does Solver.
    Its best fleet there is one replica of an A100 pipeline, and "Pipeline stages" counts its stages."""
    folder = Path(__file__).parent / "data" / "legacy_config"
    out = io.StringIO()
    s = Solver(folder, out=out)
    sol = s.solve_optimal_cost_per_token(check_exact=False)
    [entry] = sol["allocation"]
    stages = len(entry["stages"]) if "stages" in entry else entry["pp"]
    assert stages >= 2 and f"  Pipeline stages: {stages}" in out.getvalue().splitlines()
