"""Restart pacing for a crash-looping hub: at once, then doubling up to a cap."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    initial_s: float
    max_s: float
    failures: int = 0

    def next_delay(self) -> float:
        """Delay before the restart that follows one more failure."""
        self.failures += 1
        if self.failures == 1:
            # A single death is restarted at once; only repeats are slowed down.
            return 0.0
        return float(min(self.max_s, self.initial_s * 2 ** (self.failures - 2)))

    def reset(self) -> None:
        self.failures = 0
