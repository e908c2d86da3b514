"""Failures of an output location, in words a user reads (no pyarrow here: a sweep's driver raises them)."""

from __future__ import annotations

import os

from sweep.errors import InputError, Problem


class StoreError(InputError):
    """The output location cannot be used (busy, unwritable, full, or holding a damaged part)."""


def redact(out: str) -> str:
    """A URI for messages: its query string (which may carry credentials) left out."""
    return out.split("?", 1)[0] + ("?…" if "?" in out and "://" in out else "") if "://" in out else out


def fail(where: str, what: str) -> StoreError:
    return StoreError([Problem(where, what)])


def reason(e: BaseException) -> str:
    """A short reason for an I/O error: the OS's words for its errno, else the error's own text."""
    errno_ = getattr(e, "errno", None)
    if isinstance(errno_, int) and errno_ > 0:
        return os.strerror(errno_)
    return str(e).split("\n", 1)[0] or e.__class__.__name__
