"""Bad input, fuzzed (issue 8): random job files, scenario files, config.csv and catalog CSVs —
structured ones that are almost right, mutated text, raw bytes — thrown at the loaders and at the
command line (``sweep.cli.main``, in this process).

Properties, for every input: no traceback and no internal error — the exit code is 2 with only
``error: …`` lines on stderr, or 0 when the random input happens to be valid; and nothing is written
outside the output folder (a job's ``sweep.name`` names a folder: traversal, absolute paths, NUL
bytes, newlines and very long names are refused). Deterministic: ``derandomize=True``, no example
database; example counts are kept small so that the file runs in well under a minute.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_FILES, SMALL_SCENARIO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep.cli import main
from sweep.errors import InputError
from sweep.inputs.job import load_job
from sweep.inputs.scenario import ALIASES, SCHEMA
from sweep.solve.methods import ALL_METHODS

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])
FEW = settings(FUZZ, max_examples=50)
COUNTS: dict[str, list[int]] = {}


# ------------------------------------------------------------------------------------ strategies

SPECIAL_STRINGS = ["builtin", "gpus.csv", "offerings.csv", "models.csv", "profile.csv", "m1", "G1", "o1",
                   "highs", "cbc", "profile", "roofline", "profile+roofline", "spot", "on_demand", "bf16",
                   "../../etc/passwd", "/etc/passwd", "/", ".", "..", "", " ", "x" * 300, "o1|o2=5",
                   "\u00e9\u4e2d", "a\nb", "#", "[1, 2]", "nan", "1e999"]
PATHLIKE = ["../../x", "/tmp/abs", "a/b", "..", ".", "-rf", "x" * 101, "x" * 5000, "ok\n", " sp", "nul\0x",
            "C:\\win", "~", "$HOME", "ok", "ok.2", "Ok_3-x"]
KEYS = [*SCHEMA, *ALIASES, "bogus", "workload.bogus", "catalog", "perf", "perf.tp.x", "sweep", "grid", "a.b.c"]
FAST_METHODS = ["dinkelbach", "max_throughput", "weighted", "pareto", "iterative", "enumeration"]

# Control characters in keys and NULs in file paths are pinned by the dedicated tests at the end
# (they once broke the one-line error and raised a ValueError); the random text below avoids them.
texts = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
scalars = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63)]),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300, -0.0, 5e-324]),
    st.booleans(),
    st.sampled_from(SPECIAL_STRINGS),
    texts,
)
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.sampled_from(["o1", "o2", "G1", "x", ""]), scalars, max_size=2))
keys = st.one_of(st.sampled_from(KEYS), st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
                                                 max_size=10))


# valid values of some keys, for inputs that are right apart from one fault (or none)
VALID: dict[str, list[Any]] = {
    "workload.prompt_tokens": [64, 512], "workload.output_tokens": [16, 256], "catalog.price": ["spot", "on_demand"],
    "limits.budget": [0, 5, 30], "perf.tp": [[1], [1, 4]], "solver.name": ["highs", "cbc"],
    "methods.enumeration.points": [2, 3], "workload.tpot_slo_ms": [0, 50], "limits.max_gpus": [0, 8],
}
modes = st.sampled_from(["valid", "valid", "one fault", "one fault", "chaos"])


@st.composite
def overrides(draw: st.DrawFn, max_n: int, mode: str = "chaos") -> dict[str, Any]:
    """A few scenario keys: valid ones (``valid``), valid but one (``one fault``), or mostly real keys
    with their default or a random value (``chaos``)."""
    out: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, max_n))):
        if mode == "chaos":
            k = draw(st.sampled_from(list(SCHEMA))) if draw(st.integers(0, 6)) else draw(keys)
            default = SCHEMA[k].default if k in SCHEMA and SCHEMA[k].default is not None else "m1"
            out[k] = draw(st.one_of(st.just(default), values))
        else:
            k = draw(st.sampled_from(sorted(VALID)))
            out[k] = draw(st.sampled_from(VALID[k]))
    if mode == "one fault":
        k = draw(st.one_of(st.sampled_from(list(SCHEMA)), keys))
        out[k] = draw(values)
    return out


def toml_str(s: str) -> str:
    """A TOML basic string: JSON's escapes, plus DEL (TOML forbids it raw)."""
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def key_text(k: str) -> str:
    bare = re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", k)
    return k if bare else toml_str(k)


def literal(v: Any) -> str:
    """A TOML literal (JSON-escaped strings are TOML basic strings; nan/inf as TOML spells them)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if v in (float("inf"), -float("inf")):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_str(str(k))} = {literal(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    return toml_str(v)


def table_text(header: str, items: dict[str, Any]) -> str:
    body = "".join(f"{key_text(k)} = {literal(v)}\n" for k, v in items.items())
    return (f"[{header}]\n" if header else "") + body


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """The text as is, or cut short, or with a random run of characters or lines spliced in."""
    how = draw(st.sampled_from(["keep"] * 5 + ["truncate", "splice", "line"]))
    if how == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if how == "splice":
        i = draw(st.integers(0, len(text)))
        return text[:i] + draw(st.text(st.characters(blacklist_characters="\0"), max_size=8)) + text[i:]
    if how == "line":
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines)))
        junk = draw(st.sampled_from(["[", "]]", "= 1", "x =", "[grid", "\"unterminated", "a = [1,", "[[scenarios]]",
                                     "[sweep]", "key = 'x'\x00", "\ufeff", "\t\t"]))
        return "".join(lines[:i]) + junk + "\n" + "".join(lines[i:])
    return text


def job_text(sweep: dict[str, Any], base: dict[str, Any]) -> str:
    """``[sweep]`` and scenario keys, each dotted key in its section's table (bare keys first)."""
    sections: dict[str, dict[str, Any]] = {}
    root: dict[str, Any] = {}
    for k, v in base.items():
        head, _, leaf = k.rpartition(".")
        if head and leaf and key_text(k) == k:
            sections.setdefault(head, {})[leaf] = v
        else:
            root[k] = v
    return table_text("", root) + table_text("sweep", sweep) + "".join(table_text(h, t) for h, t in sections.items())


@st.composite
def job_files(draw: st.DrawFn) -> str:
    """A job over the small catalogs: valid, valid but for one fault, or chaotic; then perhaps mutated."""
    mode = draw(modes)
    chaos = mode == "chaos"
    sweep: dict[str, Any] = {"name": draw(st.sampled_from(["fz", "fz.2", "Fz_3-x"])),
                             "methods": draw(st.lists(st.sampled_from(FAST_METHODS), min_size=1, max_size=3))}
    if chaos:  # hostile names: see also test_sweep_name_never_leaves_results_folder
        if draw(st.booleans()):
            sweep["name"] = draw(st.one_of(st.sampled_from(PATHLIKE), texts))
        if draw(st.booleans()):
            sweep["methods"] = draw(st.one_of(st.lists(st.sampled_from([*FAST_METHODS, "bogus", ""]), max_size=3),
                                              scalars))
        if draw(st.integers(0, 3)) == 0:
            sweep[draw(st.sampled_from(["base", "description", "bogus"]))] = draw(values)
    if draw(st.booleans()):
        sweep["out"] = draw(st.sampled_from(PATHLIKE))  # --out is always given: it must win
    base = {k: v for k, v in SMALL_SCENARIO.items() if k != "model"}
    base["methods.enumeration.points"] = 3
    base.update(draw(overrides(2, "valid" if mode == "one fault" else mode)))
    grid_keys = st.sampled_from(sorted(VALID))
    grid = draw(st.dictionaries(grid_keys, st.lists(st.sampled_from([None]), min_size=1, max_size=2), max_size=2))
    grid = {k: [draw(st.sampled_from(VALID[k])) for _ in v] for k, v in grid.items()}
    grid["model"] = ["m1"]
    if chaos:
        grid.update(draw(st.dictionaries(st.one_of(grid_keys, keys), st.one_of(st.lists(scalars, max_size=2), scalars),
                                         max_size=2)))
        if draw(st.integers(0, 5)) == 0:
            del grid["model"]
    if mode == "one fault":
        where = draw(st.sampled_from(["base", "grid", "sweep"]))
        if where == "sweep":
            sweep[draw(st.sampled_from(["name", "methods", "out", "base", "bogus"]))] = draw(values)
        else:
            fault = draw(overrides(0, "one fault"))
            (grid if where == "grid" else base).update(
                {k: (v if where == "base" or isinstance(v, list) else [v]) for k, v in fault.items()})
    text = job_text(sweep, base)
    text += table_text("grid", grid)
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        text += "[[scenarios]]\n" + table_text("", draw(overrides(2, "valid" if mode == "one fault" else mode)))
    return draw(mutated(text)) if chaos else text


@st.composite
def scenario_files(draw: st.DrawFn) -> str:
    mode = draw(modes)
    vals = dict(SMALL_SCENARIO)
    vals.update(draw(overrides(3, mode)))
    if mode == "chaos" and draw(st.integers(0, 4)) == 0:
        vals.pop(draw(st.sampled_from(list(SMALL_SCENARIO))), None)
    text = "".join(f"{key_text(k)} = {literal(v)}\n" for k, v in vals.items())
    return draw(mutated(text)) if mode == "chaos" else text


def csv_cell(v: Any) -> str:
    s = literal(v) if not isinstance(v, str) else v
    return json.dumps(s) if ("," in s or "\n" in s) and s[:1] != "[" else s


@st.composite
def config_csvs(draw: st.DrawFn) -> str:
    rows = [("model", "m1"), ("catalog.gpus", "gpus.csv"), ("catalog.offerings", "offerings.csv"),
            ("catalog.models", "models.csv"), ("perf.source", "profile"), ("perf.profile", "profile.csv")]
    mode = draw(modes)
    chaos = mode == "chaos"
    if chaos and draw(st.integers(0, 3)) == 0:
        rows.pop(draw(st.integers(0, len(rows) - 1)))
    rows += [(k, csv_cell(v)) for k, v in draw(overrides(3, mode)).items()]
    header = draw(st.sampled_from(["key,value\n", "parameter,value\n", "", "# a comment\n"]
                                  + (["key\n", ",,,\n"] if chaos else [])))
    body = "".join(f"{k},{v}\n" if not chaos or draw(st.integers(0, 9)) else f"{k}\n" for k, v in rows)
    return draw(mutated(header + body)) if chaos else header + body


@st.composite
def catalog_sets(draw: st.DrawFn) -> dict[str, str | bytes]:
    """The small catalogs with one of them damaged: a cell, a header, a row, or raw bytes."""
    files: dict[str, str | bytes] = dict(SMALL_FILES)
    name = draw(st.sampled_from(sorted(SMALL_FILES)))
    lines = str(files[name]).splitlines()
    how = draw(st.sampled_from(["cell", "cell", "header", "dup", "drop", "bytes", "empty", "extra"]))
    if how == "cell":
        r = draw(st.integers(0, len(lines) - 1))
        cells = lines[r].split(",")
        c = draw(st.integers(0, len(cells) - 1))
        cells[c] = csv_cell(draw(scalars))
        lines[r] = ",".join(cells)
    elif how == "header":
        cells = lines[0].split(",")
        c = draw(st.integers(0, len(cells) - 1))
        # (profile.csv: a header with spaces is a known bug outside this issue, pinned below)
        pad = [] if name == "profile.csv" else [cells[c] + " ", " " + cells[c]]
        cells[c] = draw(st.sampled_from(["", "bogus", cells[c].upper(), "\ufeff" + cells[c], *pad]))
        lines[0] = ",".join(cells)
    elif how == "dup":
        lines.append(lines[-1])
    elif how == "drop":
        c = draw(st.integers(0, lines[0].count(",")))
        lines = [",".join(x for i, x in enumerate(ln.split(",")) if i != c) for ln in lines]
    elif how == "extra":
        lines.append(draw(st.text(max_size=20)).replace("\r", ""))
    files[name] = draw(st.binary(max_size=40)) if how == "bytes" else "" if how == "empty" else "\n".join(lines) + "\n"
    return files


# -------------------------------------------------------------------------------------- checking


@contextmanager
def sandbox() -> Iterator[Path]:
    """A fresh folder as the working directory, several levels down a private root (so that a
    ``../..`` would still land inside the root, where it is seen)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as root:
        work = Path(root) / "a" / "b" / "work"
        work.mkdir(parents=True)
        cwd = os.getcwd()
        os.chdir(work)
        try:
            yield work
        finally:
            os.chdir(cwd)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def write_small(folder: Path, files: dict[str, str | bytes] | None = None) -> None:
    for name, content in (files or SMALL_FILES).items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))


def run_cli(capsys: pytest.CaptureFixture[str], *args: object, label: str) -> tuple[int, list[str]]:
    """Run ``sweep.cli.main``; check the exit-code/stderr contract; count the outcome under ``label``."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert code in (0, 2), f"exit {code}: {err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code == 2:
        assert lines and all(ln.startswith("error: ") for ln in lines), err
        assert not any(ln.startswith("error: internal") for ln in lines), err
    COUNTS.setdefault(label, [0, 0])[code == 0] += 1
    return code, lines


def write_text(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", "surrogatepass"))


# ------------------------------------------------------------------------------------------ tests


@FUZZ
@given(text=job_files())
def test_fuzzed_job_files_run(capsys, text):
    """`sweep run` on a random job: exit 0 or 2 with only `error:` lines; writes only into --out."""
    with sandbox() as work:
        (work / "job").mkdir()
        write_small(work / "job")
        job = work / "job" / "fuzz.toml"
        write_text(job, text)
        root = work.parents[2]
        before = tree(root)
        code, _ = run_cli(capsys, "run", job, "--out", work / "out", "--backend", "serial", "-q", label="job files")
        new = {p for p in tree(root) - before if not p.startswith("a/b/work/out")}
        assert not new, f"written outside the output folder: {sorted(new)}"
        if code == 2:
            assert not (work / "out").exists(), "bad input, yet the output folder was created"


@FUZZ
@given(text=job_files())
def test_fuzzed_job_files_load(text, tmp_path_factory):
    """The loader alone: a job and every scenario it generates, or one InputError."""
    d = tmp_path_factory.mktemp("jl")
    write_small(d)
    p = d / "fuzz.toml"
    write_text(p, text)
    try:
        job = load_job(p)
        for _ in job.scenarios():
            pass
    except InputError as e:
        assert e.lines() and all(line.startswith("error: ") for line in e.lines())


@FEW
@given(name=st.one_of(st.sampled_from(PATHLIKE), st.text(min_size=1, max_size=30)))
def test_sweep_name_never_leaves_results_folder(capsys, name):
    """No --out and no sweep.out: a job's name names results/<name>; a name that is not one plain
    folder name (traversal, absolute, NUL, newline, too long, …) is refused before anything is written."""
    with sandbox() as work:
        write_small(work)
        job = work / "fuzz.toml"
        write_text(job, job_text({"name": name, "methods": ["dinkelbach"]}, SMALL_SCENARIO))
        root = work.parents[2]
        before = tree(root)
        code, err = run_cli(capsys, "run", job, "--backend", "serial", "-q", label="sweep names")
        new = tree(root) - before
        if code == 0:
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name)
            assert {p for p in new if not p.startswith(f"a/b/work/results/{name}")} == {"a/b/work/results"}
        else:
            assert any("sweep.name" in line for line in err), err
            assert not new, f"refused, yet written: {sorted(new)}"


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", "..", ".", "nul\0x", "ok\n", "x" * 101, "x" * 5000, ""])
def test_path_traversal_names_are_refused(tmp_path, capsys, name):
    job = tmp_path / "j.toml"
    write_text(job, table_text("sweep", {"name": name}) + 'model = "llama-3.1-8b"\n')
    with pytest.raises(InputError) as e:
        load_job(job)
    assert any("sweep.name" in line for line in e.value.lines())


@pytest.mark.parametrize("key,value", [("sweep.out", "a\0b"), ("sweep.base", "b\0.toml"),
                                       ("catalog.gpus", "g\0.csv"), ("perf.profile", "p\0.csv"),
                                       ("model", "m\0")])
def test_nul_in_a_job_path_or_name_is_bad_input(tmp_path, capsys, key, value):
    if key.startswith("sweep."):
        text = job_text({"name": "n", key.split(".", 1)[1]: value}, {"model": "llama-3.1-8b"})
    else:
        text = job_text({"name": "n"}, {"model": "llama-3.1-8b", key: value})
    write_text(tmp_path / "j.toml", text)
    code, err = run_cli(capsys, "run", tmp_path / "j.toml", "--out", tmp_path / "out", "-q", label="NUL paths")
    assert code == 2 and any(key in line and "NUL" in line for line in err), err
    assert not (tmp_path / "out").exists()


def test_nul_in_out_option(tmp_path, capsys):
    write_small(tmp_path)
    job = tmp_path / "j.toml"
    write_text(job, job_text({"name": "n"}, SMALL_SCENARIO))
    code, err = run_cli(capsys, "run", job, "--out", "o\0ut", "-q", "--backend", "serial", label="NUL paths")
    assert code == 2 and len(err) == 1 and "NUL" in err[0]


def test_deeply_nested_job_is_bad_input(tmp_path, capsys):
    for i, text in enumerate(["[sweep]\nname = \"d\"\n[grid]\nmodel = " + "[" * 5000 + "]" * 5000 + "\n",
                              "[sweep]\nname = \"d\"\n[grid]\n" + ".".join(["a"] * 3000) + " = [1]\n"]):
        write_text(tmp_path / f"d{i}.toml", text)
        code, err = run_cli(capsys, "run", tmp_path / f"d{i}.toml", "-q", "--out", tmp_path / "o", label="nesting")
        assert code == 2 and len(err) == 1, err


@FUZZ
@given(text=scenario_files())
def test_fuzzed_scenario_files(capsys, text):
    with sandbox() as work:
        write_small(work)
        write_text(work / "s.toml", text)
        before = tree(work)
        run_cli(capsys, "solve", work / "s.toml", "--method", "dinkelbach", label="scenario files")
        run_cli(capsys, "candidates", work / "s.toml", "--json", label="scenario files")
        assert tree(work) == before


@FUZZ
@given(text=config_csvs())
def test_fuzzed_config_csv(capsys, text):
    with sandbox() as work:
        write_small(work)
        write_text(work / "config.csv", text)
        run_cli(capsys, "solve", work / "config.csv", "--method", "dinkelbach", label="config.csv files")


@FUZZ
@given(files=catalog_sets())
def test_fuzzed_catalog_csvs(capsys, files):
    with sandbox() as work:
        write_small(work, files)
        write_text(work / "s.toml", "".join(f"{key_text(k)} = {literal(v)}\n" for k, v in SMALL_SCENARIO.items()))
        run_cli(capsys, "solve", work / "s.toml", "--method", "dinkelbach", label="catalog CSVs")
        for kind, name in (("gpus", "gpus.csv"), ("models", "models.csv"), ("offerings", "offerings.csv")):
            run_cli(capsys, "catalog", kind, "--file", work / name, label="catalog CSVs")


@FEW
@given(data=st.binary(max_size=200), kind=st.sampled_from(["job.toml", "s.toml", "config.csv"]))
def test_raw_bytes(capsys, data, kind):
    with sandbox() as work:
        write_small(work)
        (work / kind).write_bytes(data)
        if kind == "job.toml":
            run_cli(capsys, "run", work / kind, "--out", work / "out", "--backend", "serial", "-q", label="raw bytes")
        else:
            run_cli(capsys, "solve", work / kind, label="raw bytes")


def test_zz_fuzz_figures(capsys):
    """The counts, for the README (runs last in this file)."""
    total = sum(sum(v) for v in COUNTS.values())
    valid = sum(v[1] for v in COUNTS.values())
    parts = ", ".join(f"{k} {sum(v)} ({v[1]} valid)" for k, v in sorted(COUNTS.items()))
    with capsys.disabled():
        print(f"\nRELIABILITY fuzz: {total} random or hostile inputs to the CLI ({parts}): {total - valid} refused "
              f"with exit 2 and only `error:` lines, {valid} valid ran with exit 0; 0 tracebacks, 0 internal "
              f"errors, 0 writes outside the output folder")


def test_fuzzed_methods_are_real_ones():
    assert set(FAST_METHODS) <= set(ALL_METHODS)


# ---------------------------------------------------- known bugs outside this files (pinned)

OUTSIDE = "outside issue 8's files (sweep/errors.py, sweep/scenario.py): reported to the lead"



def test_control_characters_in_a_key_stay_on_one_line(tmp_path, capsys):
    write_text(tmp_path / "s.toml", '"bad\\nkey" = 1\nmodel = "m1"\n')
    code, err = run_cli(capsys, "solve", tmp_path / "s.toml", label="known bugs")
    assert code == 2



@pytest.mark.parametrize("name,text", [("s.toml", 'model = "m1"\n[catalog]\ngpus = "g\\u0000.csv"\n'),
                                       ("config.csv", "key,value\nmodel,m1\nperf.profile,\0profile.csv\n")])
def test_nul_in_a_scenario_files_catalog_path(tmp_path, capsys, name, text):
    write_text(tmp_path / name, text)
    run_cli(capsys, "solve", tmp_path / name, label="known bugs")



def test_deeply_nested_scenario_file(tmp_path, capsys):
    write_text(tmp_path / "s.toml", ".".join(["a"] * 3000) + " = 1\n")
    run_cli(capsys, "solve", tmp_path / "s.toml", label="known bugs")



def test_profile_header_with_spaces(tmp_path, capsys):
    write_small(tmp_path, {**SMALL_FILES, "profile.csv": "offering,tp ,pp,throughput_tok_s\no1,1,1,1000\n"})
    write_text(tmp_path / "s.toml", "".join(f"{key_text(k)} = {literal(v)}\n" for k, v in SMALL_SCENARIO.items()))
    run_cli(capsys, "solve", tmp_path / "s.toml", label="known bugs")
