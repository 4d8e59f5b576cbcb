"""The traffic profile: predictions a day, spread over the day by a stated diurnal shape.

Traffic follows a sinusoid over 24 hourly steps: ``mean x (1 + (peak_factor - 1) x
cos(2 pi (h - peak_hour) / 24))``, so the busiest hour carries ``peak_factor`` times the mean
and the quietest ``2 - peak_factor`` times it (0 at the default factor 2). Autoscaled platforms
follow the hourly rate; an always-on VM is sized for the peak hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SECONDS_PER_DAY = 86_400
HOURS_PER_MONTH = 730.0
"""Google's pricing pages count a month as 730 hours."""
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


@dataclass(frozen=True)
class TrafficProfile:
    """``per_day`` predictions with a diurnal ``peak_factor`` in [1, 2] peaking at ``peak_hour``."""

    per_day: float
    peak_factor: float = 2.0
    peak_hour: int = 14

    def __post_init__(self) -> None:
        """Reject a non-positive volume or a peak factor outside [1, 2]."""
        if not self.per_day > 0 or not math.isfinite(self.per_day):
            raise ValueError(f"predictions a day must be positive, got {self.per_day}")
        if not 1.0 <= self.peak_factor <= 2.0:
            raise ValueError(f"the diurnal peak factor must be in [1, 2], got {self.peak_factor}")

    @property
    def mean_rps(self) -> float:
        """Average requests per second over the day."""
        return self.per_day / SECONDS_PER_DAY

    @property
    def peak_rps(self) -> float:
        """Requests per second in the busiest hour."""
        return max(self.hourly_rps())

    def hourly_rps(self) -> list[float]:
        """The 24 hourly average rates (their mean is :attr:`mean_rps`)."""
        a = self.peak_factor - 1.0
        return [
            self.mean_rps * (1 + a * math.cos(2 * math.pi * (h - self.peak_hour) / 24))
            for h in range(24)
        ]

    def scaled(self, per_day: float) -> TrafficProfile:
        """The same shape at another volume."""
        return TrafficProfile(per_day, self.peak_factor, self.peak_hour)


def flat(rps: float) -> TrafficProfile:
    """A constant ``rps`` all day (peak factor 1)."""
    return TrafficProfile(rps * SECONDS_PER_DAY, 1.0)
