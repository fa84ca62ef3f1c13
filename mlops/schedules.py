"""Schedule expressions as EventBridge Scheduler and Glue accept them, checked at synth time.

EventBridge Scheduler (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html):
``rate(value unit)`` with a positive integer value and a unit of minute(s), hour(s) or day(s);
``cron(minutes hours day-of-month month day-of-week year)``, six fields, with the field values and
wildcards of EventBridge's cron table (https://docs.aws.amazon.com/eventbridge/latest/userguide/
eb-scheduled-rule-pattern.html): one of day-of-month and day-of-week must be ``?``. Glue's
time-based schedules for crawlers use the same six-field cron form.
"""

from __future__ import annotations

import re

_RATE = re.compile(r"^rate\((?P<value>[^ )]*) (?P<unit>[^ )]*)\)$")
_UNITS = ("minute", "minutes", "hour", "hours", "day", "days")
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
# field: (name, lowest, highest, extra wildcards, names)
_FIELDS = (
    ("minutes", 0, 59, "", ""),
    ("hours", 0, 23, "", ""),
    ("day-of-month", 1, 31, "?LW", ""),
    ("month", 1, 12, "", _MONTHS),
    ("day-of-week", 1, 7, "?L#", _DAYS),
    ("year", 1970, 2199, "", ""),
)


def check(expression: str, *, rate: bool = True) -> None:
    """``ValueError`` with one line saying what is wrong with ``expression``; ``rate=False``
    for Glue, which takes cron expressions only."""
    if rate and expression.startswith("rate("):
        _check_rate(expression)
        return
    if not (expression.startswith("cron(") and expression.endswith(")")):
        forms = "rate(value unit) or cron(six fields)" if rate else "cron(six fields)"
        raise ValueError(f"must be {forms} (got {expression!r})")
    fields = expression[len("cron("):-1].split()
    if len(fields) != len(_FIELDS):
        raise ValueError(f"a cron expression has six fields (minutes hours day-of-month month day-of-week year); "
                         f"got {len(fields)} in {expression!r}")
    for value, (name, low, high, wildcards, names) in zip(fields, _FIELDS):
        _check_field(value, name, low, high, wildcards, names, expression)
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError(f"one of day-of-month and day-of-week must be '?' and the other not (got {day_of_month!r} "
                         f"and {day_of_week!r} in {expression!r})")


def _check_rate(expression: str) -> None:
    match = _RATE.match(expression)
    if not match:
        raise ValueError(f"a rate expression is rate(value unit), e.g. rate(1 day) (got {expression!r})")
    value, unit = match["value"], match["unit"]
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"the rate's value must be a positive integer (got {value!r} in {expression!r})")
    if unit not in _UNITS:
        raise ValueError(f"the rate's unit must be one of {', '.join(_UNITS)} (got {unit!r} in {expression!r})")


def _check_field(value: str, name: str, low: int, high: int, wildcards: str, names: str, expression: str) -> None:
    number = rf"(\d+|{names})" if names else r"\d+"
    single = rf"({number}|\*)(-{number})?(/\d+)?"
    special = {"?": r"\?", "L": rf"(L|{number}L)" if name == "day-of-week" else r"(L|LW)",
               "W": r"\d+W", "#": rf"{number}#[1-5]"}
    alternatives = [special[w] for w in wildcards] + [single]
    pattern = re.compile(rf"^({'|'.join(alternatives)})(,({'|'.join(alternatives)}))*$")
    if not pattern.match(value):
        spelled = f" or {names.split('|')[0]}-{names.split('|')[-1]}" if names else ""
        raise ValueError(f"cron field {name} {value!r} is not valid: values {low}-{high}{spelled}, wildcards "
                         f"{' '.join(', - * /'.split() + list(wildcards))} (in {expression!r})")
    for part in re.findall(r"\d+", re.sub(r"/\d+|#\d", "", value)):
        if not low <= int(part) <= high:
            raise ValueError(f"cron field {name}: {part} is outside {low}-{high} (in {expression!r})")
