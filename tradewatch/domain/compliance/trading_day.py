"""The trading day of an event: the calendar date of its time in the policy's timezone.

``TradingDay.of(t_ns)`` caches the current day's bounds (UTC ns), so the next event of the same
day costs one comparison instead of a timezone conversion; DST days are 23 or 25 hours long, as
the zone says.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from tradewatch.domain.events.timestamps import NS_PER_SECOND, datetime_to_ns


class TradingDay:
    __slots__ = ("zone", "start_ns", "end_ns", "day")

    def __init__(self, zone: zoneinfo.ZoneInfo) -> None:
        self.zone = zone
        self.start_ns = self.end_ns = 0
        self.day = ""

    def of(self, t_ns: int) -> str:
        """The trading day (ISO date) holding ``t_ns``; ``start_ns``/``end_ns`` are then its bounds."""
        if self.start_ns <= t_ns < self.end_ns:
            return self.day
        local = datetime.fromtimestamp(t_ns // NS_PER_SECOND, UTC).astimezone(self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        self.start_ns = datetime_to_ns(midnight.replace(tzinfo=self.zone))
        self.end_ns = datetime_to_ns((midnight + timedelta(days=1)).replace(tzinfo=self.zone))
        self.day = local.date().isoformat()
        return self.day


__all__ = ["TradingDay"]
