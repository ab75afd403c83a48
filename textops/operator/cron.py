"""Standard five-field cron schedules, evaluated in UTC (pure).

The retraining policy only needs one question answered: "what is the newest tick of this
schedule at or before now?" — a tick later than the last one acted on means the schedule fired.
Supported: ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists, month and weekday
names (``jan``, ``sun``), weekday 7 as Sunday, and the macros ``@hourly``, ``@daily``/
``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``. As in Vixie cron, when both
day-of-month and day-of-week are restricted a day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, lowest, highest, names mapped to numbers)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)
# The longest gap between ticks of a valid schedule: 29 February on a given weekday can be
# 28 years apart; look back no further than that.
_LOOKBACK_DAYS = 366 * 29


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: the allowed values of each field."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def previous(self, now: datetime) -> datetime | None:
        """The newest tick at or before ``now`` (aware, UTC), or None if there is none."""
        now = now.astimezone(UTC).replace(second=0, microsecond=0)
        day = now.replace(hour=0, minute=0)
        for back in range(_LOOKBACK_DAYS):
            candidate_day = day - timedelta(days=back)
            if not self.matches_day(candidate_day):
                continue
            for hour in sorted(self.hours, reverse=True):
                for minute in sorted(self.minutes, reverse=True):
                    tick = candidate_day.replace(hour=hour, minute=minute)
                    if tick <= now:
                        return tick
        return None


def parse_schedule(expression: str) -> Schedule:
    """Parse a schedule; raise ValueError saying which field is wrong."""
    text = MACROS.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise ValueError(
            f"invalid schedule {expression!r}: expected 5 fields "
            "(minute hour day-of-month month day-of-week) or a macro such as @daily"
        )
    values = [
        _parse_field(part, *spec, expression=expression)
        for part, spec in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = frozenset(0 if d == 7 else d for d in values[4])  # 7 is Sunday too
    return Schedule(
        expression=expression,
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
    )


def _parse_field(
    text: str, name: str, low: int, high: int, names: dict[str, int], *, expression: str
) -> frozenset[int]:
    def number(token: str) -> int:
        token = token.lower()
        if token in names:
            return names[token]
        if not token.isdigit():
            raise ValueError(f"invalid schedule {expression!r}: {name} value {token!r}")
        value = int(token)
        if not low <= value <= high:
            raise ValueError(
                f"invalid schedule {expression!r}: {name} {value} is outside {low}-{high}"
            )
        return value

    result: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"invalid schedule {expression!r}: {name} step {step_text!r}")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = number(a), number(b)
            if first > last:
                raise ValueError(f"invalid schedule {expression!r}: {name} range {span!r}")
        else:
            first = number(span)
            last = high if step_text else first
        result.update(range(first, last + 1, step))
    return frozenset(result)
