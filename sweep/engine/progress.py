"""Progress of a sweep: a live bar on a terminal, plain periodic lines otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def fmt_duration(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Counts finished tasks and failures; draws a tqdm bar on a TTY, else a line every ``every_s``."""

    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool = True,
                 every_s: float = 5.0, initial: int = 0):
        self.total = total
        self.done = initial
        self.new = 0
        self.failed = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.every_s = every_s
        self.t0 = time.monotonic()
        self._last = self.t0
        self._bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, file=self.stream, unit="task",
                             dynamic_ncols=True, smoothing=0.1)

    def update(self, n: int, failed: int = 0) -> None:
        self.done += n
        self.new += n
        self.failed += failed
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix(failed=self.failed, refresh=False)
            return
        now = time.monotonic()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        el = time.monotonic() - self.t0
        rate = self.new / el if el > 0 else 0.0
        left = self.total - self.done
        eta = fmt_duration(left / rate) if rate > 0 else "?"
        pct = 100 * self.done / self.total if self.total else 100.0
        return (f"[sweep] {self.done}/{self.total} tasks ({pct:.0f}%), {rate:.1f} tasks/s, "
                f"ETA {eta}, {self.failed} failed")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.t0
