"""Input errors: every problem found in one validation pass, each with where it was found."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One problem with user input: ``where`` is a file, a key or ``file:row``."""

    where: str
    what: str

    def line(self) -> str:
        return f"error: {_one_line(self.where)}: {_one_line(self.what)}"


def _one_line(text: str) -> str:
    """Control characters from user input shown escaped, so one problem is always one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class InputError(Exception):
    """Raised when user input is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.line() for p in self.problems))

    def lines(self) -> list[str]:
        return [p.line() for p in self.problems]


@dataclass
class Problems:
    """Collects problems during a validation pass; ``raise_if_any`` ends the pass."""

    items: list[Problem] = field(default_factory=list)

    def add(self, where: str, what: str) -> None:
        self.items.append(Problem(where, what))

    def extend(self, other: Problems | InputError) -> None:
        self.items.extend(other.items if isinstance(other, Problems) else other.problems)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            # the same problem may be reached twice (e.g. a shared catalog file); report it once
            raise InputError(list(dict.fromkeys(self.items)))
