"""The LLM boundary over real HTTP: `ChatOpenAI` and the OpenAI SDK against a loopback fake server.

Everything from the request payload to the SDK's retries, timeouts and parsing runs for real; only
the provider is fake (`tests.fakes.openai_server`).
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.core.cache import cache
from prometheus_client import REGISTRY

from duoniche import llm, llm_budget
from duoniche.models import LLMCall
from exercises.generation import generation_disabled_reason
from exercises.prompts import data_tag
from exercises.prompts.generate import GENERATE_CHOOSE_SENTENCE, ChooseSentenceGeneration
from exercises.prompts.validate import VALIDATE_CHOOSE_SENTENCE
from tests.fakes.openai_server import (
    FAKE_API_KEY,
    FAKE_MODEL,
    NoToolCall,
    Raw,
    Reply,
    Slow,
    Status,
    openai_server_fixture,  # noqa: F401
)

pytestmark = pytest.mark.django_db

METHODS = ["json_schema", "function_calling", "json_mode"]
VALUES = {
    "user_language": "English",
    "exercise_language": "Bulgarian",
    "alphabet": "Cyrillic",
    "language_level": "A2",
    "topic": "food",
    "persona_line": "",
    "exercise_kind": "choose-the-correct-sentence",
}
GOOD = {
    "correct_sentence": "Искам чаша вода.",
    "incorrect_sentences": ["Искам чаша водата.", "Искаш чаша вода аз."],
    "grammar_tags": {"grammar": ["definite articles"], "vocabulary": ["drinks"]},
}


def generate() -> ChooseSentenceGeneration:
    return llm.structured_call(
        purpose="generation",
        prompt=GENERATE_CHOOSE_SENTENCE,
        values=VALUES,
        subject="generation:Bulgarian:choose_sentence",
    )


def counter(name: str, **labels: str) -> float:
    return (
        REGISTRY.get_sample_value(
            name, {"purpose": "generation", "llm_model": FAKE_MODEL, **labels}
        )
        or 0.0
    )


def counters(outcome: str = "ok") -> tuple[float, float, float, float]:
    return (
        counter("backend_llm_calls_total", outcome=outcome),
        counter("backend_llm_input_tokens_total"),
        counter("backend_llm_output_tokens_total"),
        counter("backend_llm_cost_usd_total"),
    )


def ledger() -> list[tuple[bool, str, int | None, int | None]]:
    return list(
        LLMCall.objects.order_by("pk").values_list(
            "ok", "error_type", "input_tokens", "output_tokens"
        )
    )


# --- structured output, per method --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "mode"),
    [("json_schema", "json_schema"), ("function_calling", "tools"), ("json_mode", "json_object")],
)
def test_good_output_for_each_structured_output_method(openai_server, settings, method, mode):
    settings.LLM_STRUCTURED_OUTPUT_METHOD = method
    settings.LLM_PRICES_JSON = {FAKE_MODEL: {"input": 0.4, "output": 1.6}}
    openai_server.script(Reply(GOOD, usage=(1000, 500)))
    calls, input_tokens, output_tokens, cost = counters()

    result = generate()

    assert result == ChooseSentenceGeneration.model_validate(GOOD)
    (request,) = openai_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.mode == mode
    assert request.body["model"] == FAKE_MODEL
    assert request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    system, user = request.messages
    assert (system["role"], user["role"]) == ("system", "user")
    assert "CEFR level A2" in system["content"]
    assert "exactly 2 sentences" in system["content"]
    if mode == "json_schema":
        assert request.body["response_format"]["json_schema"]["name"] == "ChooseSentenceGeneration"
    if mode == "tools":
        assert request.body["tools"][0]["function"]["name"] == "ChooseSentenceGeneration"
    call = LLMCall.objects.get()
    assert (call.ok, call.purpose, call.operation, call.prompt_version) == (
        True,
        "generation",
        "generate_choose_sentence",
        "generate_choose_sentence@1",
    )
    assert (call.model, call.provider_host, call.subject) == (
        FAKE_MODEL,
        "127.0.0.1",
        "generation:Bulgarian:choose_sentence",
    )
    # usage → tokens; cost = (1000 × 0.4 + 500 × 1.6) / 1e6
    assert (call.input_tokens, call.output_tokens, call.cost_usd) == (
        1000,
        500,
        Decimal("0.001200"),
    )
    # the metrics move with the ledger
    assert counters() == pytest.approx(
        (calls + 1, input_tokens + 1000, output_tokens + 500, cost + 0.0012)
    )


@pytest.mark.parametrize("method", METHODS)
def test_malformed_json_is_bad_output_and_its_tokens_are_recorded(openai_server, settings, method):
    settings.LLM_STRUCTURED_OUTPUT_METHOD = method
    openai_server.script(Raw('{"correct_sentence": "Искам'))

    with pytest.raises(llm.LLMBadOutput):
        generate()

    call = LLMCall.objects.get()
    assert not call.ok
    if method == "function_calling":  # LangChain keeps unparsable arguments as an invalid call
        assert call.error_message == "tool call arguments are not valid JSON"
    else:
        assert call.error_type in ("ValidationError", "OutputParserException")
    # The provider answered (and billed): its usage is in the ledger even when unparsable.
    assert (call.input_tokens, call.output_tokens) == (100, 20)


@pytest.mark.parametrize("method", METHODS)
def test_a_wrong_number_of_incorrect_sentences_is_bad_output(openai_server, settings, method):
    settings.LLM_STRUCTURED_OUTPUT_METHOD = method
    openai_server.script({**GOOD, "incorrect_sentences": ["Искам чаша водата."]})

    with pytest.raises(llm.LLMBadOutput, match="exactly 2"):
        generate()

    assert [row[0] for row in ledger()] == [False]


@pytest.mark.parametrize("method", METHODS)
def test_an_answer_without_the_structure_is_bad_output(openai_server, settings, method):
    settings.LLM_STRUCTURED_OUTPUT_METHOD = method
    openai_server.script(NoToolCall("I would rather chat about the weather."))

    with pytest.raises(llm.LLMBadOutput):
        generate()

    ((ok, error_type, input_tokens, _),) = ledger()
    assert not ok
    assert input_tokens == 100
    if method == "function_calling":  # the model skipped the tool call: the not-None guard
        assert error_type == "EmptyStructuredOutput"


def test_a_slow_provider_times_out_as_unavailable(openai_server, settings):
    settings.OPENAI_REQUEST_TIMEOUT = 0.5
    openai_server.script(Slow(3.0, GOOD))
    errors = counter("backend_llm_calls_total", outcome="error")

    started = time.monotonic()
    with pytest.raises(llm.LLMUnavailable, match="APITimeoutError"):
        generate()

    assert time.monotonic() - started < 2.5
    call = LLMCall.objects.get()
    assert (call.ok, call.error_type, call.input_tokens, call.cost_usd) == (
        False,
        "APITimeoutError",
        None,
        None,
    )
    assert openai_server.requests[0].headers["x-stainless-read-timeout"] == "0.5"
    assert counter("backend_llm_calls_total", outcome="error") == errors + 1


def test_a_server_error_is_retried_by_the_sdk_then_succeeds(openai_server, settings):
    settings.OPENAI_MAX_RETRIES = 1
    openai_server.script(Status(500, retry_after_ms=10), GOOD)

    assert generate().correct_sentence == "Искам чаша вода."

    retries = [request.headers["x-stainless-retry-count"] for request in openai_server.requests]
    assert retries == ["0", "1"]
    # SDK retries are inside one application attempt: one ledger row.
    assert ledger() == [(True, "", 100, 20)]


def test_a_server_error_without_retries_left_is_unavailable(openai_server, settings):
    settings.OPENAI_MAX_RETRIES = 0
    openai_server.script(Status(500, "overloaded"), GOOD)

    with pytest.raises(llm.LLMUnavailable, match="InternalServerError"):
        generate()

    assert len(openai_server.requests) == 1
    assert ledger() == [(False, "InternalServerError", None, None)]


def test_each_application_attempt_is_a_request_and_a_ledger_row(openai_server):
    openai_server.script(
        Status(503),
        {"is_correct": False, "feedback": "Use <code>вода</code>.", "error_tags": None},
    )

    verdict = llm.validate_answer(
        prompt=VALIDATE_CHOOSE_SENTENCE,
        values={
            "exercise_language": "Bulgarian",
            "user_language": "English",
            "topic": "food",
            "task": "Choose the correct sentence.",
            "options": data_tag("exercise_options", "- Искам вода.\n- Искам водата."),
            "student_answer": data_tag("student_answer", "Искам водата."),
        },
        subject="exercise:7",
    )

    assert verdict.feedback == "Use <code>вода</code>."
    assert len(openai_server.requests) == 2
    assert list(
        LLMCall.objects.order_by("pk").values_list("attempt_no", "ok", "error_type", "operation")
    ) == [
        (1, False, "InternalServerError", "validate_choose_sentence"),
        (2, True, "", "validate_choose_sentence"),
    ]


def test_temperature_is_sent_and_an_empty_one_is_not(openai_server, settings):
    settings.OPENAI_TEMPERATURE = 0.1
    openai_server.script(GOOD, GOOD)

    generate()
    settings.OPENAI_TEMPERATURE = None
    generate()

    first, second = openai_server.requests
    assert first.body["temperature"] == 0.1
    assert "temperature" not in second.body


# --- budget -------------------------------------------------------------------------------


def budget_gauge() -> float | None:
    return REGISTRY.get_sample_value("backend_llm_budget_exhausted")


def test_the_budget_stops_calls_and_sets_the_gauge(openai_server, settings):
    settings.LLM_PRICES_JSON = {FAKE_MODEL: {"input": 1, "output": 1}}
    settings.LLM_DAILY_BUDGET_USD = 0.001
    openai_server.script(Reply(GOOD, usage=(900, 200)), GOOD)

    generate()  # 0.0011 USD: the budget is now spent
    assert budget_gauge() == 0
    cache.clear()  # the day's spend is cached for a minute

    with pytest.raises(llm.LLMUnavailable, match="daily LLM budget exhausted"):
        generate()

    assert budget_gauge() == 1
    assert len(openai_server.requests) == 1  # no request once the budget is reached
    assert LLMCall.objects.count() == 1
    assert not llm_budget.purpose_enabled("validation")
    assert generation_disabled_reason() == (
        "exercise generation disabled: daily LLM budget exhausted"
    )

    settings.LLM_DAILY_BUDGET_USD = 1.0
    cache.clear()
    assert llm_budget.purpose_enabled("validation")
    assert budget_gauge() == 0
