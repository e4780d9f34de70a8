"""Personas: a speaker with a role and a mood for generated exercises."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    name: str
    role: str
    emotion: str
    motivation: str
    communication_style: str
    preferred_voice: str | None
    speaking_rate: float
    pitch: float
    groups: tuple[str, ...]


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "Embarrassed Tourist",
        "tourist",
        "embarrassed",
        "looking for help, afraid of looking stupid",
        "",
        "Puck",
        0.92,
        1.0,
        ("LEISURE", "HEALTH_EMERGENCY", "SERVICE"),
    ),
    Persona(
        "Irritated Customer",
        "customer",
        "irritated",
        "believes they are being deceived",
        "",
        "Sadaltager",
        1.08,
        -1.0,
        ("SERVICE", "NEUTRAL", "DAILY_LIFE"),
    ),
    Persona(
        "Friendly Barista",
        "barista",
        "",
        "",
        "friendly, talkative",
        None,
        1.08,
        2.0,
        ("SERVICE", "NEUTRAL", "LEISURE"),
    ),
    Persona(
        "Suspicious Pensioner",
        "pensioner",
        "suspicious",
        "",
        "distrustful",
        "Umbriel",
        0.90,
        -2.0,
        ("DAILY_LIFE", "SERVICE", "HEALTH_EMERGENCY"),
    ),
    Persona(
        "Rushing Student",
        "student",
        "",
        "in a big hurry",
        "",
        "Schedar",
        1.25,
        1.0,
        ("SOCIAL", "DAILY_LIFE"),
    ),
    Persona(
        "Apathetic Taxi Driver",
        "taxi driver",
        "apathy, tired of life",
        "",
        "laconic",
        "Enceladus",
        0.88,
        -3.0,
        ("DAILY_LIFE", "LEISURE"),
    ),
    Persona(
        "Demanding Client",
        "client",
        "",
        "",
        "demanding, laconic",
        "Fenrir",
        1.00,
        -1.0,
        ("SERVICE", "NEUTRAL", "SOCIAL"),
    ),
    Persona(
        "Ironic Colleague",
        "colleague",
        "",
        "",
        "ironic, sarcastic",
        "Pulcherrima",
        1.00,
        0.5,
        ("SOCIAL", "NEUTRAL"),
    ),
    Persona(
        "Polite Waiter",
        "waiter",
        "",
        "wants to get good tips",
        "extremely polite",
        "Rasalgethi",
        0.95,
        1.0,
        ("SERVICE", "LEISURE"),
    ),
)

PERSONAS_BY_NAME: dict[str, Persona] = {persona.name: persona for persona in PERSONAS}
