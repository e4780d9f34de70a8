"""`manage.py generate_exercises`: one generation per exercise, each outcome printed, then totals
with the run's tokens and cost from the LLM ledger. The LLM is the loopback fake OpenAI server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from duoniche.models import LLMCall
from exercises.models import Exercise
from tests.fakes.openai_server import FAKE_MODEL, Reply, Status

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db

TAGS = {"grammar": [], "vocabulary": ["drinks"]}
VALID = {"issues": [], "is_valid": True}


def fill(number: int) -> dict:
    return {
        "text_with_blanks": f"Искам ___ кафе номер {number}.",
        "correct_words": ["едно"],
        "incorrect_options": ["една", "един"],
        "grammar_tags": TAGS,
    }


def run(*args: str, verbosity: int = 1) -> str:
    out = StringIO()
    call_command("generate_exercises", *args, stdout=out, stderr=StringIO(), verbosity=verbosity)
    return out.getvalue()


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 0.0
    settings.GENERATE_AUDIO = False


def test_each_outcome_is_printed_then_the_totals_with_tokens_and_cost(openai_server, settings):
    settings.LLM_PRICES_JSON = {FAKE_MODEL: {"input": 2, "output": 10}}
    openai_server.script(
        Reply(fill(1), usage=(1000, 100)),
        Reply(VALID, usage=(500, 10)),
        Reply(fill(2), usage=(1000, 100)),
        Reply({"issues": ["'една' also fits"], "is_valid": False}, usage=(500, 10)),
        Status(500),
    )

    out = run(
        "--language", "Bulgarian", "--type", "fill_in_the_blank", "--level", "B1", "--count", "3"
    )

    lines = out.splitlines()
    assert len(lines) == 4
    published, rejected = Exercise.objects.order_by("pk")
    assert re.fullmatch(rf"generated #{published.pk} B1 \w+ status=published", lines[0])
    assert re.fullmatch(
        rf"rejected #{rejected.pk} B1 \w+ status=rejected_by_assessor: 'една' also fits",
        lines[1],
    )
    assert re.fullmatch(r"failed B1 \w+: LLMUnavailable: InternalServerError: .*", lines[2])
    # (3000 input tokens × 2 + 220 output tokens × 10) / 1e6 = 0.0082 USD
    assert lines[3] == (
        "generated=1 rejected=1 failed=1 duplicates=0 llm_calls=5 llm_errors=1 "
        "input_tokens=3000 output_tokens=220 cost_usd=0.008200"
    )
    assert published.language_level == rejected.language_level == "B1"


def test_a_dry_run_saves_nothing_and_says_so(openai_server):
    openai_server.script(fill(1), VALID)

    out = run("--language", "Bulgarian", "--type", "fill_in_the_blank", "--dry-run")

    first, totals = out.splitlines()
    assert first.startswith("generated ")
    assert "status=published" in first
    assert totals.endswith("(dry run: nothing saved)")
    assert "llm_calls=2" in totals
    assert Exercise.objects.count() == 0
    assert LLMCall.objects.count() == 2


def test_without_an_llm_the_request_fails_naming_the_setting(settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""

    with pytest.raises(CommandError) as failed:
        run("--language", "Serbian", "--type", "choose_sentence", "--count", "5")

    assert str(failed.value) == (
        "exercise generation disabled: no LLM configured (set OPENAI_API_KEY, or "
        "OPENAI_BASE_URL for a compatible server); nothing generated"
    )
    assert failed.value.returncode == 1
    assert LLMCall.objects.count() == 0
    assert Exercise.objects.count() == 0


def test_without_an_llm_the_command_line_exits_non_zero(settings):
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "generate_exercises",
            "--language",
            "Serbian",
            "--type",
            "choose_sentence",
        ],
        cwd=ROOT,
        env={
            **env,
            "DJANGO_ENV_FILE": "",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": os.environ["TEST_DATABASE_URL"],
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert "set OPENAI_API_KEY" in result.stderr


def test_stories_need_a_ready_audio_pipeline(openai_server):
    with pytest.raises(CommandError) as failed:
        run("--language", "Bulgarian", "--type", "story_comprehension")

    assert str(failed.value) == (
        "stories need audio, and the audio pipeline is not ready: GENERATE_AUDIO is false; "
        "nothing generated (--dry-run works without audio)"
    )
    assert openai_server.requests == []


def test_verbosity_zero_prints_only_the_totals(openai_server):
    openai_server.script(fill(1), VALID)

    out = run("--language", "Bulgarian", "--type", "fill_in_the_blank", verbosity=0)

    assert out.startswith("generated=1 rejected=0 failed=0 duplicates=0 llm_calls=2 ")
    assert out.count("\n") == 1
    assert "cost_usd=unknown" in out  # no price configured for the model


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--language", "Klingon", "--type", "choose_sentence"), "unknown language 'Klingon'"),
        (("--language", "Serbian", "--type", "choose_accent"), "not generated for Serbian"),
        (("--language", "Serbian", "--type", "choose_sentence", "--count", "0"), "at least 1"),
    ],
)
def test_bad_arguments_are_errors(openai_server, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)

    assert openai_server.requests == []
