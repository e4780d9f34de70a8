"""Durations as configured (`PT3H` or seconds) and as sent on the wire (`PT3H`, `P1DT1H`).

Pure: the settings module imports it. Durations written for a learner live in `duoniche.texts`."""

from __future__ import annotations

from datetime import timedelta

from django.utils.dateparse import parse_duration


def parse_duration_setting(value: str) -> timedelta:
    """Parse an ISO-8601 duration (`PT3H`, `P1D`) or a plain number of seconds."""
    text = value.strip()
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    parsed = parse_duration(text) if text.upper().startswith("P") else None
    if parsed is None:
        raise ValueError(f"not a duration: {value!r}")
    return parsed


def format_iso_duration(value: timedelta) -> str:
    """A non-negative duration on the wire: `PT3H`, `P1DT1H`, `PT2H59M59.000005S`, `PT0S`."""
    total_us = max(int(value / timedelta(microseconds=1)), 0)
    days, rest_us = divmod(total_us, 86_400_000_000)
    hours, rest_us = divmod(rest_us, 3_600_000_000)
    minutes, rest_us = divmod(rest_us, 60_000_000)
    seconds, micros = divmod(rest_us, 1_000_000)
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if seconds or micros:
        fraction = f".{micros:06d}".rstrip("0") if micros else ""
        time_part += f"{seconds}{fraction}S"
    result = "P" + (f"{days}D" if days else "") + (f"T{time_part}" if time_part else "")
    return result if result != "P" else "PT0S"
