"""Exponential backoff with full jitter, and the consecutive-failure budget."""

from __future__ import annotations

import random

import attrs


@attrs.define
class Backoff:
    """Delays for retrying a transient failure; gives up after ``budget`` consecutive failures.

    Attributes:
        budget: Consecutive failures tolerated; the next one is fatal.
        base_s: Upper bound of the first delay.
        cap_s: Largest delay.
        failures: Consecutive failures so far (reset by :meth:`succeeded`).
    """

    budget: int
    base_s: float = 0.5
    cap_s: float = 15.0
    failures: int = 0
    _random: random.Random = attrs.field(factory=random.Random, repr=False)

    @property
    def exhausted(self) -> bool:
        return self.failures > self.budget

    def failed(self) -> float:
        """Count a failure and return how long to wait before the next attempt (full jitter)."""
        self.failures += 1
        ceiling = min(self.cap_s, self.base_s * 2 ** (self.failures - 1))
        return self._random.uniform(ceiling / 2, ceiling)

    def succeeded(self) -> None:
        self.failures = 0
