"""Progress of a sweep on stderr: points done, rate, ETA (one line, redrawn)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, done: int = 0, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.done, self.start_done = total, done, done
        self.t0 = self.last = time.monotonic()
        self.failed = 0

    def update(self, n: int = 1, failed: int = 0):
        self.done += n
        self.failed += failed
        now = time.monotonic()
        if self.enabled and (now - self.last >= 0.2 or self.done == self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now):
        ran = self.done - self.start_done
        rate = ran / max(now - self.t0, 1e-9)
        left = self.total - self.done
        eta = left / rate if rate > 0 else float("inf")
        eta_s = "--:--" if eta == float("inf") else time.strftime("%H:%M:%S", time.gmtime(eta))
        self.stream.write(f"\rhotmem sweep: {self.done}/{self.total} points "
                          f"({self.failed} not ok), {rate:.1f}/s, ETA {eta_s}   ")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
