"""How old a scenario's prices are (SPEC §7: prices older than 90 days are warned about when used).

An offering's ``as_of`` is free text that starts with when its price was read: an ISO date
(``2026-11-02``), a month (``2025-06``), a half or quarter (``2025-H1``, ``2025-Q3``), a year range
(``2024-25``), ``early-/mid-/late-YYYY`` or a year. The *latest* day that label can mean is taken
(a price is never called stale before it surely is); a label that names no date is not judged.
"""

from __future__ import annotations

import calendar
import os
import re
from collections.abc import Iterable
from datetime import date

from sweep.inputs.catalog import Offering

MAX_AGE_DAYS = 90
ENV_MAX_AGE = "SWEEP_PRICE_MAX_AGE_DAYS"  # 0 = never warn

_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?!\d)")
_YEAR_DASH_2 = re.compile(r"^(\d{4})-(\d{2})(?!\d)")  # 2025-06 (a month) or 2024-25 (a year range)
_HALF = re.compile(r"^(\d{4})-H([12])\b", re.IGNORECASE)
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])\b", re.IGNORECASE)
_PART_OF_YEAR = re.compile(r"^(early|mid|late)[- ](\d{4})\b", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})(?!\d)")
_PART_END = {"early": 4, "mid": 8, "late": 12}  # last month each part can mean


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def as_of_date(text: str) -> date | None:
    """The latest day an ``as_of`` label can mean, or None when it names no date."""
    s = (text or "").strip()
    try:
        if m := _ISO_DAY.match(s):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _HALF.match(s):
            return _month_end(int(m[1]), 6 * int(m[2]))
        if m := _QUARTER.match(s):
            return _month_end(int(m[1]), 3 * int(m[2]))
        if m := _YEAR_DASH_2.match(s):
            year, tail = int(m[1]), int(m[2])
            if 1 <= tail <= 12:
                return _month_end(year, tail)
            end_year = year // 100 * 100 + tail
            return date(end_year, 12, 31) if end_year > year else None
        if m := _PART_OF_YEAR.match(s):
            return _month_end(int(m[2]), _PART_END[m[1].lower()])
        if m := _YEAR.match(s):
            return date(int(m[1]), 12, 31)
    except ValueError:  # 2025-13-40 and the like: not a date
        return None
    return None


def max_age_days() -> int:
    """The age in days above which prices are stale: $SWEEP_PRICE_MAX_AGE_DAYS, default 90 (0 = off)."""
    raw = os.environ.get(ENV_MAX_AGE, "").strip()
    try:
        return max(0, int(raw)) if raw else MAX_AGE_DAYS
    except ValueError:
        return MAX_AGE_DAYS


def stale_prices_warning(offerings: Iterable[Offering], today: date | None = None,
                         max_age: int | None = None) -> str | None:
    """One ``warning:`` line when some offerings' prices are older than ``max_age`` days, else None."""
    limit = max_age_days() if max_age is None else max_age
    if limit <= 0:
        return None
    today = today or date.today()
    offers = list(offerings)
    stale = [when for o in offers if (when := as_of_date(o.as_of)) is not None and (today - when).days > limit]
    if not stale:
        return None
    first, last = min(stale), max(stale)
    span = f"{last}" if first == last else f"{first} to {last}"
    return (f"warning: prices older than {limit} days: {len(stale)} of {len(offers)} offerings "
            f"(dated {span} by as_of, at least {(today - last).days} days old); refresh them with "
            f"`sweep catalog import skypilot` ({ENV_MAX_AGE}=0 silences this)")
