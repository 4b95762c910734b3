"""Business hours: when human agents are expected to answer."""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_PART = re.compile(r"^\s*(\w{3})(?:-(\w{3}))?\s+(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})\s*$")


class BusinessHours:
    """Parsed from e.g. "Mon-Fri 08:00-20:00; Sat 09:00-17:00" in a named time zone; "24:00" ends a
    window at midnight, so "Mon-Sun 00:00-24:00" is always open."""

    def __init__(self, spec: str, timezone: str = "UTC") -> None:
        self.tz = ZoneInfo(timezone)
        self.windows: dict[int, list[tuple[time, time]]] = {}
        for part in filter(str.strip, spec.split(";")):
            m = _PART.match(part)
            if not m:
                raise ValueError(f"cannot read business hours {part!r}; use 'Mon-Fri 08:00-20:00'")
            first, last = _DAYS.index(m[1].lower()), _DAYS.index((m[2] or m[1]).lower())
            end = time.max if (m[5], m[6]) in (("24", "00"),) else time(int(m[5]), int(m[6]))
            window = (time(int(m[3]), int(m[4])), end)
            for day in range(first, last + 1):
                self.windows.setdefault(day, []).append(window)

    def open_at(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        now = local.time()
        return any(start <= now and (now < end or end == time.max)
                   for start, end in self.windows.get(local.weekday(), []))
