"""Reading the CSV files users write (catalogs, profiles, traces, the design note's folders, calibration
measurements): one home for what they share — ``#`` comment lines and blank rows skipped, header names
stripped, every row kept with its line number in the file so that each bad row is one ``error: FILE:LINE: …``
line. What a row must hold is its reader's business (:mod:`sweep.inputs.catalog`, :mod:`sweep.inputs.scenario`,
:mod:`sweep.inputs.mix`, :mod:`sweep.inputs.legacy`, :mod:`sweep.fleet.calibrate`). Not read here: the
``key,value`` rows of a ``config.csv`` (:func:`sweep.inputs.scenario.read_config_csv`) and SkyPilot's own
catalog files (:mod:`sweep.inputs.skypilot_catalog`), which are not tables a user writes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sweep.errors import Problems

EMPTY = "empty file: expected a header row and at least one data row"


@dataclass(frozen=True)
class CsvRows:
    """A CSV file's header (names stripped) and data rows as (line number, cells as written)."""

    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]

    def where(self, lineno: int) -> str:
        """``FILE:LINE``, the place a problem with one row is reported at."""
        return f"{self.path}:{lineno}"

    def records(self) -> Iterator[tuple[int, dict[str, str | None]]]:
        """(line number, {column: cell}) per row, as :class:`csv.DictReader` gives them: a missing cell
        is None."""
        for lineno, cells in self.rows:
            yield lineno, {h: cells[i] if i < len(cells) else None for i, h in enumerate(self.header)}


def read_csv(path: Path, problems: Problems, *, not_found: str = "file not found", empty: str = EMPTY,
             error_detail: bool = False) -> CsvRows | None:
    """The header and data rows of a CSV file, or None after adding one problem (not found, unreadable,
    empty — the messages are the caller's: ``not_found``, ``empty``; ``error_detail`` adds the OS's
    reason to "cannot read file"). Lines that are blank or start with ``#``, and rows of empty cells,
    are skipped."""
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add(label, not_found)
        return None
    except (OSError, UnicodeDecodeError) as e:
        problems.add(label, f"cannot read file ({e.__class__.__name__}{f': {e}' if error_detail else ''})")
        return None
    table = parse_csv(text, path)
    if not table.header:
        problems.add(label, empty)
        return None
    return table


def parse_csv(text: str, path: Path) -> CsvRows:
    """A CSV file's text as header and rows (see :func:`read_csv`); no header (``()``) when it has no row."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = next(csv.reader([line]), [])
        if any(c.strip() for c in cells):
            rows.append((lineno, tuple(cells)))
    if not rows:
        return CsvRows(path, (), ())
    (_, header), body = rows[0], rows[1:]
    return CsvRows(path, tuple(h.strip() for h in header), tuple(body))
