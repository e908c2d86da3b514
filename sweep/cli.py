"""The ``sweep`` command line (SPEC §7). Each command lives in ``sweep/commands/<name>.py`` with
``add_arguments(parser)`` and ``run(args) -> exit code``; this module only parses and dispatches.

Exit codes: 0 success (an infeasible scenario is a result), 2 bad input (one ``error:`` line per
problem, no traceback), 3 internal failure, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sweep.errors import InputError

COMMANDS = {
    "solve": "solve one scenario with one or more methods",
    "candidates": "the candidate layouts of a scenario, kept and dropped",
    "catalog": "print the built-in (or given) GPU, offering and model catalogs; import SkyPilot's as offerings",
    "run": "run a sweep (job file) on a backend into a Parquet dataset",
    "submit": "submit a sweep to a Ray cluster as a Ray Job",
    "query": "query a results dataset (filters, best rows, frontier, SQL)",
    "plot": "plot a scenario's cost-throughput frontier and method answers",
    "calibrate": "fit the performance model's GPU-family knobs to measured throughput (a calibration file)",
    "export": "a chosen fleet as deployable files: SkyPilot task YAMLs or vLLM launch commands",
    "report": "one self-contained HTML page of a results dataset (audit, best fleets, frontiers)",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors are bad input too: exit 2, one line
        print(f"error: {self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line, if any (only its module is imported: start-up stays fast)."""
    for a in argv:
        if a in COMMANDS:
            return a
        if not a.startswith("-"):
            return None
    return None


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    from sweep import __version__

    chosen = _chosen(sys.argv[1:] if argv is None else argv)
    p = _Parser(prog="sweep", description="Exact GPU fleet planning for LLM serving: which GPUs, how many, "
                                           "what TP/PP layout, at the least $/token.")
    p.add_argument("--version", action="version", version=f"sweep {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, help_text in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name != chosen:
            continue
        try:
            mod = importlib.import_module(f"sweep.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"sweep.commands.{name}":
                raise
            sp.set_defaults(_missing=name)
            continue
        mod.add_arguments(sp)
        sp.set_defaults(_module=mod)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser(argv).parse_args(argv)
        if getattr(args, "_missing", None):
            print(f"error: {args._missing}: not available in this build", file=sys.stderr)
            return 3
        code = args._module.run(args)
    except InputError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        code = 2
    except KeyboardInterrupt as e:  # SIGTERM arrives as its subclass ``Terminated`` during a sweep
        print("\ninterrupted", file=sys.stderr)
        code = 143 if type(e).__name__ == "Terminated" else 130
    except BrokenPipeError:
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 2
    except Exception as e:  # noqa: BLE001 - last resort: one line, exit 3, never a traceback
        print(f"error: internal: {e.__class__.__name__}: {e}", file=sys.stderr)
        code = 3
    return code


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
