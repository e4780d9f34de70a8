"""Durations as configured (`PT3H` or seconds) and as sent on the wire (`PT3H`, `P1DT1H`)."""

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
