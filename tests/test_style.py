"""The code is ruff-clean (the rules in pyproject.toml), checked with the test command like everything else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "sweep", "tests", "benchmarks"], cwd=REPO,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_layers_import_one_way() -> None:
    """A lower layer never imports a higher one (module- or function-level): inputs < fleet < solve <
    results < engine < deploy < commands/cli; nothing imports a private name of another module."""
    import re

    order = ["vocab", "errors", "faults", "report", "inputs", "fleet", "solve", "results", "engine", "deploy",
             "commands", "cli"]
    rank = {name: i for i, name in enumerate(order)}
    imp = re.compile(r"^\s*(?:from|import)\s+sweep\.(\w+)(?:\.[\w.]+)?(?:\s+import\s+([\w, ()]+))?", re.M)
    bad = []
    for path in (REPO / "sweep").rglob("*.py"):
        rel = path.relative_to(REPO / "sweep").parts
        layer = rel[0].removesuffix(".py")
        if layer not in rank:
            continue
        for m in imp.finditer(path.read_text()):
            target = m.group(1)
            if target in rank and rank[target] > rank[layer]:
                bad.append(f"{'/'.join(rel)} imports sweep.{target}")
            names = m.group(2) or ""
            bad += [f"{'/'.join(rel)} imports private {n.strip()}" for n in names.replace("(", "").replace(")", "").split(",")
                    if n.strip().startswith("_") and n.strip() != "__version__"]
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_modules() -> None:
    """No cycle among sweep's modules, counting imports inside functions too."""
    import re

    imp = re.compile(r"^\s*from\s+(sweep(?:\.\w+)*)\s+import\s+([\w, ()]+)|^\s*import\s+(sweep(?:\.\w+)+)", re.M)
    modules = {}
    for path in (REPO / "sweep").rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for m in imp.finditer(path.read_text()):
            if m.group(3):
                deps.add(m.group(3))
                continue
            base = m.group(1)
            for n in m.group(2).replace("(", "").replace(")", "").split(","):
                sub = f"{base}.{n.strip().split(' as ')[0]}"
                deps.add(sub if sub in modules else base)
        graph[name] = {d for d in deps if d in modules and d != name and d != "sweep"}
    state: dict[str, int] = {}
    cycles = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*stack[stack.index(d):], d]))
            elif d not in state:
                visit(d, [*stack, d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "\n".join(cycles)


def test_reading_results_imports_no_solver_and_no_ray(tmp_path) -> None:
    """`sweep.open_results(...).best()` and `sweep query` need neither PuLP, HiGHS nor Ray (a fresh process
    reads a dataset written by a tiny serial sweep)."""
    from engine_jobs import write_job

    from sweep.engine.runner import run_sweep

    job = write_job(tmp_path, name="light")
    run_sweep(job, backend="serial", out=str(tmp_path / "out"), progress=False)
    code = (
        "import sys, io, contextlib\n"
        "import sweep\n"
        f"sweep.open_results({str(tmp_path / 'out')!r}).best()\n"
        "from sweep.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['query', {str(tmp_path / 'out')!r}, '--best', '--format', 'csv'])\n"
        "print(rc, sorted(m for m in ('pulp', 'highspy', 'ray') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["0", "[]"], r.stdout


def test_modules_stay_small_and_the_layers_are_packages() -> None:
    """No module over 600 lines; the layers below the CLI are sub-packages (issue: layers you can see)."""
    long = [f"{p.relative_to(REPO)}: {n}" for p in (REPO / "sweep").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600]
    assert not long, long
    packages = {p.parent.name for p in (REPO / "sweep").glob("*/__init__.py")}
    assert {"inputs", "fleet", "solve", "results", "engine", "deploy", "commands"} <= packages
