"""Durations as configured (`PT3H` or seconds), as sent on the wire (`PT3H`, `P1DT1H`) and as
written for a learner ("3 hours", "2 часа 22 минуты")."""

from __future__ import annotations

from datetime import timedelta

from django.utils import translation
from django.utils.dateparse import parse_duration
from django.utils.translation import npgettext, pgettext

from duoniche.texts import resolve_language

_MINUTE_US = 60_000_000


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


def format_pause_time(value: timedelta, *, language: str | None) -> str:
    """A wait as people write it, in `language` (English fallback): "3 hours", "2 hours 59
    minutes", "45 minutes", "less than a minute". Rounded up to the minute, so "ready in" is
    never early; hours are not folded into days ("26 hours"). Plural forms follow each
    catalogue's Plural-Forms (Russian, Ukrainian and Serbian have three)."""
    total_us = value // timedelta(microseconds=1)
    with translation.override(resolve_language(language)):
        if total_us < _MINUTE_US:
            return pgettext("duration_less_than_a_minute", "less than a minute")
        hours, minutes = divmod(-(-total_us // _MINUTE_US), 60)
        hours_text = npgettext("duration_hours", "{count} hour", "{count} hours", hours)
        minutes_text = npgettext("duration_minutes", "{count} minute", "{count} minutes", minutes)
        if not minutes:
            return hours_text.format(count=hours)
        if not hours:
            return minutes_text.format(count=minutes)
        return pgettext("duration_hours_minutes", "{hours} {minutes}").format(
            hours=hours_text.format(count=hours), minutes=minutes_text.format(count=minutes)
        )
