"""Bad input never crashes: exit 2, one ``error: <file or key>: <what>`` line per problem, nothing on stdout.

Every case writes real files (a small profile-mode scenario from conftest, then one thing broken) and
runs the real CLI. Also: the note's config.csv loads and maps, and the built-in catalogs are complete.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.inputs.catalog import load_builtin
from sweep.inputs.load import load_scenario

LINE = re.compile(r"^error: (?P<where>\S[^:]*(?::\d+)?(?:: \S+)?): (?P<what>.+)$")

OFFERINGS_HEAD = "offering,provider,gpu,gpus_per_node,price_per_hour,spot_price_per_hour,max_nodes\n"
PROFILE_HEAD = "offering,tp,pp,throughput_tok_s\n"

# id -> (scenario values, files, [(where fragment, what fragment), ...]) — one pair per expected line
CASES: dict[str, tuple[dict, dict, list[tuple[str, str]]]] = {
    # unknown keys list the valid ones
    "unknown top-level key": ({"foo": 1}, {}, [("scenario.toml: foo", "unknown key (valid top-level keys")]),
    "unknown key in a section": ({"workload.promt_tokens": 5}, {},
                                 [("workload.promt_tokens", "valid keys: workload.prompt_tokens")]),
    "unknown section": ({"limit.budget": 3}, {}, [("limit.budget", "unknown key (valid top-level keys")]),
    # wrong types
    "int given a string": ({"workload.prompt_tokens": "many"}, {}, [("workload.prompt_tokens", "whole number")]),
    "int given a fraction": ({"limits.max_gpus": 1.5}, {}, [("limits.max_gpus", "whole number")]),
    "float given a string": ({"limits.budget": "ten"}, {}, [("limits.budget", "must be a number")]),
    "float given a bool": ({"workload.min_throughput": True}, {}, [("workload.min_throughput", "must be a number")]),
    "bool given a string": ({"perf.mixed": "yes"}, {}, [("perf.mixed", "true or false")]),
    "list of ints given strings": ({"perf.tp": ["a"]}, {}, [("perf.tp", "whole number")]),
    "string given a number": ({"model": 5}, {}, [("model", "must be a string")]),
    "table given a number": ({"catalog.max_nodes": 3}, {}, [("catalog.max_nodes", "table")]),
    # negative or zero where not allowed
    "negative budget": ({"limits.budget": -1}, {}, [("limits.budget", "must be >= 0")]),
    "negative demand floor": ({"workload.min_throughput": -5}, {}, [("workload.min_throughput", "must be >= 0")]),
    "zero output tokens": ({"workload.output_tokens": 0}, {}, [("workload.output_tokens", "must be > 0")]),
    "zero time limit": ({"solver.time_limit_s": 0}, {}, [("solver.time_limit_s", "must be > 0")]),
    "zero tp": ({"perf.tp": [0, 2]}, {}, [("perf.tp", "must be > 0")]),
    "empty tp list": ({"perf.tp": []}, {}, [("perf.tp", "at least one")]),
    "zero availability override": ({"catalog.max_nodes": {"o1": 0}}, {}, [("catalog.max_nodes", "o1 = 0")]),
    "efficiency above 1": ({"perf.bw_efficiency": 1.5}, {}, [("perf.bw_efficiency", "(0, 1]")]),
    "negative catalog price": ({}, {"offerings.csv": OFFERINGS_HEAD + "o1,acme,G1,4,-10.0,4.0,2\no2,acme,G2,1,1.0,0.5,3\n"},
                               [("offerings.csv:2", "'price_per_hour' must be > 0")]),
    "zero gpus per node": ({}, {"offerings.csv": OFFERINGS_HEAD + "o1,acme,G1,0,10.0,4.0,2\no2,acme,G2,1,1.0,0.5,3\n"},
                           [("offerings.csv:2", "'gpus_per_node' must be > 0")]),
    "catalog cell not a number": ({}, {"gpus.csv": "gpu,mem_gb,bf16_tflops,mem_bw_gbps\nG1,lots,300,2000\nG2,24,100,600\n"},
                                  [("gpus.csv:2", "'mem_gb' must be a number")]),
    "catalog mem_mib of another card": ({}, {"gpus.csv": "gpu,mem_gb,mem_mib,bf16_tflops,mem_bw_gbps\n"
                                                         "G1,80,20000,300,2000\nG2,24,,100,600\n"},
                                         [("gpus.csv", "mem_mib 20000 (21.0 GB) is not within 15% of mem_gb 80")]),
    "profile throughput zero": ({}, {"profile.csv": PROFILE_HEAD + "o1,1,1,0\n"}, [("profile.csv:2", "must be > 0")]),
    # a bad row is named by its line in the file, comment and blank lines counted (sweep.inputs.csvfile)
    "profile row after comments": ({}, {"profile.csv": "# measured\n" + PROFILE_HEAD + "\n# tp 1\no1,1,1,0\n"},
                                   [("profile.csv:5", "must be > 0")]),
    "profile tp not a number": ({}, {"profile.csv": PROFILE_HEAD + "o1,one,1,100\n"},
                                [("profile.csv:2", "whole numbers")]),
    # unknown references
    "unknown model": ({"model": "gpt-9"}, {}, [("model", "unknown model 'gpt-9' (known: m1)")]),
    "missing model": ({"model": None}, {}, [("model", "missing")]),
    "unknown name in catalog.only": ({"catalog.only": ["G7"]}, {}, [("catalog.only", "'G7' (known gpus: G1, G2")]),
    "unknown offering in catalog.max_nodes": ({"catalog.max_nodes": {"o7": 2}}, {},
                                              [("catalog.max_nodes", "unknown offering 'o7' (known: o1, o2)")]),
    "offering names an unknown gpu": ({}, {"offerings.csv": OFFERINGS_HEAD + "o1,acme,G1,4,10.0,4.0,2\no2,acme,G9,1,1.0,0.5,3\n",
                                           "profile.csv": PROFILE_HEAD + "o1,1,1,100\n"},
                                      [("offerings.csv", "offering 'o2' names unknown gpu 'G9' (known in")]),
    "profile row names an unknown offering": ({}, {"profile.csv": PROFILE_HEAD + "o1,1,1,100\no9,1,1,100\n"},
                                              [("profile.csv:3", "unknown offering 'o9' (known: o1, o2)")]),
    # missing files
    "missing gpus catalog": ({}, {"gpus.csv": None}, [("gpus.csv", "file not found")]),
    "missing offerings catalog": ({}, {"offerings.csv": None}, [("offerings.csv", "file not found")]),
    "missing models catalog": ({}, {"models.csv": None}, [("models.csv", "file not found")]),
    "missing profile": ({}, {"profile.csv": None}, [("profile.csv", "not found")]),
    "profile source without a profile": ({"perf.profile": None}, {}, [("perf.profile", "required when perf.source")]),
    # duplicates
    "duplicate offering": ({}, {"offerings.csv": OFFERINGS_HEAD + "o1,acme,G1,4,10.0,4.0,2\no1,acme,G1,4,9.0,4.0,2\n"
                                                  "o2,acme,G2,1,1.0,0.5,3\n"},
                           [("offerings.csv", "duplicate offering 'o1'")]),
    "duplicate gpu": ({}, {"gpus.csv": "gpu,mem_gb,bf16_tflops,mem_bw_gbps\nG1,80,300,2000\nG2,24,100,600\nG1,40,300,1500\n"},
                      [("gpus.csv", "duplicate gpu 'G1'")]),
    "duplicate profile row": ({}, {"profile.csv": PROFILE_HEAD + "o1,1,1,100\no1,1,1,120\n"},
                              [("profile.csv:3", "duplicate row")]),
    # empty catalogs
    "offerings with a header only": ({}, {"offerings.csv": OFFERINGS_HEAD}, [("offerings.csv", "no data rows")]),
    "empty gpus file": ({}, {"gpus.csv": ""}, [("gpus.csv", "empty file")]),
    "models with comments only": ({}, {"models.csv": "# nothing here\n"}, [("models.csv", "empty file")]),
    "empty profile": ({}, {"profile.csv": ""}, [("profile.csv", "empty file")]),
    "profile with a header only": ({}, {"profile.csv": PROFILE_HEAD}, [("profile.csv", "no data rows")]),
    # columns
    "unknown catalog column": ({}, {"models.csv": "model,params_b,layers,hidden,heads,colour\nm1,7,32,4096,32,red\n"},
                               [("models.csv", "unknown column 'colour' (valid: model, params_b")]),
    "missing catalog column": ({}, {"gpus.csv": "gpu,mem_gb,bf16_tflops\nG1,80,300\nG2,24,100\n"},
                               [("gpus.csv", "missing required column 'mem_bw_gbps'")]),
    "unknown profile column": ({}, {"profile.csv": "offering,tp,pp,throughput_tok_s,notes\no1,1,1,100,x\n"},
                               [("profile.csv", "unknown column 'notes' (valid: offering")]),
    # unreadable files
    "a folder as a catalog": ({"catalog.offerings": "."}, {}, [("s0", "cannot read file (IsADirectoryError")]),
    "a folder as the profile": ({"perf.profile": "."}, {}, [("s0", "cannot read file (IsADirectoryError")]),
    "invalid UTF-8 catalog": ({}, {"gpus.csv": b"gpu,mem_gb\n\xff\xfe\x00\x81garbage\n"},
                              [("gpus.csv", "cannot read file (UnicodeDecodeError")]),
    "binary profile": ({}, {"profile.csv": bytes(range(256))}, [("profile.csv", "cannot read file (UnicodeDecodeError")]),
    "binary scenario": ({}, {"scenario.toml": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xd8"}, [("scenario.toml", "cannot read file")]),
    "invalid TOML": ({}, {"scenario.toml": 'model = "m1"\n[workload\nprompt_tokens = 5\n'},
                     [("scenario.toml", "invalid TOML")]),
    # ranges and choices
    "enumeration range reversed": ({"methods.enumeration.budget_min": 10, "methods.enumeration.budget_max": 1}, {},
                                   [("methods.enumeration", "budget_min (10.0) is above budget_max (1.0)")]),
    "unknown solver": ({"solver.name": "gurobi"}, {}, [("solver.name", "must be one of 'highs', 'cbc'")]),
    "unknown price kind": ({"catalog.price": "reserved"}, {}, [("catalog.price", "'on_demand', 'spot'")]),
    "unknown perf source": ({"perf.source": "guess"}, {}, [("perf.source", "'roofline'")]),
    # the note's config.csv
    "config.csv row without a value": ({}, {"config.csv": "key,value\nmodel,llama-3.1-8b\nlimits.max_gpus\n"},
                                       [("config.csv:3", "row 'limits.max_gpus' has no value")]),
    "config.csv row with an empty value": ({}, {"config.csv": "key,value\nmodel,llama-3.1-8b\nlimits.budget,  # none\n"},
                                           [("config.csv:3", "row 'limits.budget' has no value")]),
    "config.csv unknown key": ({}, {"config.csv": "parameter,value\nmodel,llama-3.1-8b\nmax_cost_per_tokn,1e-6\n"},
                               [("config.csv: max_cost_per_tokn", "unknown key")]),
}
CONFIG_CASES = {k for k, (_, files, _) in CASES.items() if "config.csv" in files}


def _check_lines(err: str, expected: list[tuple[str, str]]) -> None:
    """Exactly one well-formed line per expected (where, what) pair; each pair matched by a distinct line."""
    lines = err.splitlines()
    assert "Traceback" not in err
    assert len(lines) == len(expected), f"expected {len(expected)} error line(s), got:\n{err}"
    for line in lines:
        assert LINE.match(line), f"not 'error: <file or key>: <what>': {line!r}"
    left = list(lines)
    for where, what in expected:
        hit = next((ln for ln in left if where in ln.split(": ", 1)[1] and what in ln), None)
        assert hit is not None, f"no line with {where!r} and {what!r} in:\n{err}"
        left.remove(hit)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_exit_2_and_one_line_per_problem(case, small_scenario, run_cli):
    values, files, expected = CASES[case]
    name = "config.csv" if case in CONFIG_CASES else "scenario.toml"
    path = small_scenario(values, files, name=name)
    r = run_cli("solve", path, "--method", "max_throughput")
    assert r.code == 2, r.err
    assert r.out == ""
    _check_lines(r.err, expected)


def test_the_small_scenario_itself_is_valid(small_scenario, run_cli):
    """The base every case above breaks in one place loads and solves."""
    r = run_cli("solve", small_scenario(), "--method", "max_throughput", "--json")
    assert r.code == 0 and r.err == ""


def test_missing_scenario_file(tmp_path, run_cli):
    r = run_cli("solve", tmp_path / "nope.toml")
    assert (r.code, r.out) == (2, "")
    _check_lines(r.err, [("nope.toml", "file not found")])


@pytest.mark.parametrize("args, where, what", [
    (["--budget", "-1"], "--budget", "must be >= 0"),
    (["--method", "fastest"], "--method", "unknown method 'fastest' (valid: max_throughput"),
])
def test_bad_command_line_values(args, where, what, small_scenario, run_cli):
    r = run_cli("solve", small_scenario(), *args)
    assert (r.code, r.out) == (2, "")
    _check_lines(r.err, [(where, what)])


def _several_problems(small_scenario) -> Path:
    return small_scenario(
        {"foo": 1, "solver.name": "gurobi", "model": "nope", "methods.enumeration.budget_min": 50},
        {"offerings.csv": OFFERINGS_HEAD + "o1,acme,G1,4,10.0,4.0,2\no1,acme,G1,4,9.0,4.0,2\no2,acme,G2,1,-1,0.5,3\n",
         "profile.csv": PROFILE_HEAD + "o1,1,1,100\nzz,1,1,5\n"},
    )


SEVERAL = [("foo", "unknown key"), ("solver.name", "gurobi"), ("model", "unknown model 'nope'"),
           ("methods.enumeration", "budget_min (50.0) is above"), ("offerings.csv:4", "price_per_hour"),
           ("offerings.csv", "duplicate offering 'o1'"), ("profile.csv:3", "unknown offering 'zz'")]


@pytest.mark.parametrize("command", ["solve", "candidates"])
def test_several_problems_give_several_lines(command, small_scenario, run_cli):
    """One validation pass reports everything (scenario keys, catalog rows, profile rows), each once."""
    r = run_cli(command, _several_problems(small_scenario))
    assert (r.code, r.out) == (2, "")
    _check_lines(r.err, SEVERAL)


def test_a_broken_catalog_row_is_not_reported_again_where_it_is_referenced(small_scenario, run_cli):
    """o2's bad price is one problem; the profile row, catalog.only and max_nodes naming o2 add no lines."""
    path = small_scenario(
        {"catalog.only": ["o1", "o2"], "catalog.max_nodes": {"o2": 1}},
        {"offerings.csv": OFFERINGS_HEAD + "o1,acme,G1,4,10.0,4.0,2\no2,acme,G2,1,free,0.5,3\n",
         "profile.csv": PROFILE_HEAD + "o1,1,1,100\no2,1,1,50\n"},
    )
    r = run_cli("solve", path)
    assert r.code == 2
    _check_lines(r.err, [("offerings.csv:3", "'price_per_hour' must be a number")])


def test_a_missing_catalog_is_one_problem(small_scenario, run_cli):
    """Without the offerings file, references to offerings are not reported as unknown as well."""
    path = small_scenario({"catalog.only": ["o1"], "catalog.max_nodes": {"o1": 1}}, {"offerings.csv": None})
    r = run_cli("candidates", path)
    assert r.code == 2
    _check_lines(r.err, [("offerings.csv", "file not found")])


@pytest.mark.parametrize("which", ["invalid TOML", "binary scenario", "several"])
def test_no_traceback_from_a_real_process(which, small_scenario, tmp_path):
    """The installed module entry point, in its own interpreter: exit 2, only error lines, no traceback."""
    if which == "several":
        path, expected = _several_problems(small_scenario), SEVERAL
    else:
        values, files, expected = CASES[which]
        path = small_scenario(values, files)
    p = subprocess.run([sys.executable, "-m", "sweep.cli", "solve", str(path), "--json"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    _check_lines(p.stderr, expected)


# --------------------------------------------------------------------------- the note's config.csv


@pytest.mark.parametrize("header", ["key,value", "parameter,value", None])
def test_config_csv_loads_and_maps(header, small_scenario):
    text = "\n".join(filter(None, [
        header,
        "# the design note's solver settings",
        "model,m1",
        "max_cost_per_token,2.5e-6        # note name for methods.iterative.target_cpt",
        "cost_throughput_weight,0.3",
        "workload.prompt_tokens,1024",
        "limits.budget,12.5",
        "solver.name,cbc",
        "catalog.gpus,gpus.csv",
        "catalog.offerings,offerings.csv",
        "catalog.models,models.csv",
        'catalog.only,"[""o1"", ""G2""]"',
        "perf.source,profile",
        "perf.profile,profile.csv",
        "",
    ]))
    sc = load_scenario(small_scenario(files={"config.csv": text}, name="config.csv"))
    assert sc["methods.iterative.target_cpt"] == 2.5e-6
    assert sc["methods.weighted.weight"] == 0.3
    assert sc["workload.prompt_tokens"] == 1024
    assert sc["limits.budget"] == 12.5
    assert sc["solver.name"] == "cbc"
    assert sc["catalog.only"] == ["o1", "G2"]
    assert sorted(sc.offerings) == ["o1", "o2"]
    assert sc.model.model == "m1"
    assert len(sc.profile) == 3


def test_config_csv_and_toml_are_the_same_scenario(small_scenario):
    """Same content, two syntaxes: the same resolved parameters and the same scenario_id."""
    values = {"workload.prompt_tokens": 300, "methods.iterative.target_cpt": 3e-6, "methods.weighted.weight": 0.25,
              "catalog.max_nodes": {"o1": 1}}
    toml = load_scenario(small_scenario(values))
    from conftest import SMALL_SCENARIO

    rows = ["parameter,value", "max_cost_per_token,3e-6", "cost_throughput_weight,0.25",
            "workload.prompt_tokens,300", "catalog.max_nodes,{o1 = 1}"]
    rows += [f"{k},{v}" for k, v in SMALL_SCENARIO.items()]
    csv = load_scenario(small_scenario(files={"config.csv": "\n".join(rows) + "\n"}, name="config.csv"))
    assert csv.params == toml.params
    assert csv.scenario_id == toml.scenario_id
    assert csv.offerings["o1"].max_nodes == 1



def test_the_typed_view_names_every_schema_key(small_scenario):
    """``sc.workload.prompt_tokens`` and ``sc["workload.prompt_tokens"]`` are one value; the view and the
    schema name the same keys, and the settings objects built from it default to the schema's defaults."""
    from sweep.fleet.perf import Knobs
    from sweep.inputs.schema import SCHEMA
    from sweep.inputs.settings import settings_keys
    from sweep.solve.methods.common import MethodParams

    assert settings_keys() == list(SCHEMA)
    sc = load_scenario(small_scenario({"workload.prompt_tokens": 300, "perf.tp": [1, 2],
                                       "methods.iterative.target_cpt": 3e-6, "limits.budget": 1.23456}))
    assert sc.workload.prompt_tokens == sc["workload.prompt_tokens"] == 300
    assert sc.perf.tp == (1, 2) and sc.methods.iterative.target_cpt == 3e-6
    assert sc.limits.budget_units == 12345
    defaults = {k: v.default for k, v in SCHEMA.items()}
    assert Knobs.from_params(defaults) == Knobs()
    assert MethodParams.from_params(defaults) == MethodParams()

# --------------------------------------------------------------------------- built-in catalogs

REQUIRED_GPUS = ["V100-16GB", "V100-32GB", "T4", "L4", "A10G", "A100-40GB", "A100-80GB", "L40S", "H100-SXM",
                 "H100-PCIe", "H200", "B200", "MI300X"]
REQUIRED_MODELS = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.3-70b",
                   "mistral-7b", "mixtral-8x7b", "qwen2.5-72b"]


def test_builtin_catalogs():
    cat = load_builtin()
    assert len(cat.offerings) >= 30
    providers = {o.provider for o in cat.offerings.values()}
    assert {"aws", "gcp", "azure"} <= providers
    assert providers & {"lambda", "runpod", "vast"}, providers
    assert {1, 2, 4, 8} <= {o.gpus_per_node for o in cat.offerings.values()}
    assert set(REQUIRED_GPUS) <= set(cat.gpus)
    assert set(REQUIRED_MODELS) <= set(cat.models)
    mixtral = cat.models["mixtral-8x7b"]
    assert mixtral.active_params_b < mixtral.params_b
    for o in cat.offerings.values():
        assert o.as_of, f"{o.offering}: no as_of"
        assert 0 < o.spot_price_units <= o.price_units, o.offering
        assert o.max_nodes >= 1
        assert o.gpu in cat.gpus
    for g in cat.gpus.values():
        assert g.source, f"{g.gpu}: no source"
        assert g.mem_gb > 0 and g.bf16_tflops > 0 and g.mem_bw_gbps > 0 and g.link_gbps > 0
        assert g.fp8_tflops == 0 or g.fp8_tflops >= g.bf16_tflops
        assert g.mem_mib, f"{g.gpu}: no reported memory (mem_mib)"
    for m in cat.models.values():
        assert m.active_params_b <= m.params_b
        assert m.kv_heads <= m.heads and m.heads % m.kv_heads == 0


def test_gpu_memory_is_what_software_sees():
    """HBM parts are sold in GiB ("80 GB" = 81920 MiB), GDDR parts report a little less than their decimal size;
    without mem_mib (a user's gpus.csv) or with mem_gb overridden (gpu_pool.csv memory_gb), mem_gb × 1e9 is used."""
    from dataclasses import replace

    cat = load_builtin()
    assert cat.gpus["A100-80GB"].mem_bytes == 80 * 2**30
    assert cat.gpus["H100-SXM"].mem_bytes == 81559 * 2**20 > 80e9 * 1.06
    assert 23e9 < cat.gpus["L4"].mem_bytes == 23034 * 2**20 < 24.2e9
    assert replace(cat.gpus["A100-80GB"], mem_mib=None).mem_bytes == 80e9


def test_gpu_pool_memory_override_uses_its_own_figure(tmp_path):
    """A gpu_pool.csv memory_gb unlike the built-in card's is used as given (mem_gb × 1e9): the built-in
    card's reported MiB total does not describe it."""
    from sweep.errors import Problems
    from sweep.inputs.legacy import read_pool

    pool = tmp_path / "gpu_pool.csv"
    pool.write_text("gpu_type,count,memory_gb,cost_per_hour\nA100,2,60,1.5\n")
    problems = Problems()
    [(_, gpu, _, _, _)] = read_pool(pool, load_builtin().gpus, problems)
    assert not problems.items and gpu.mem_gb == 60 and gpu.mem_mib is None and gpu.mem_bytes == 60e9
