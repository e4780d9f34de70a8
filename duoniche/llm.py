"""The one LLM boundary for calls: structured and plain-text calls, and their ledger.

Apps hand it a `Prompt` (id, version, templates, output schema) and get Pydantic models or plain
values back; they never see SDK exceptions, only `LLMUnavailable` (transport, timeout, provider
error, purpose disabled) and `LLMBadOutput` (unparsable or invalid structure). Every request,
successful or not, leaves one `LLMCall` row, written here only, with its cost.

Which model answers a purpose and how it is built is `duoniche.llm_models`; spend, prices, budget
and whether a purpose is enabled are `duoniche.llm_budget`. This module and `llm_models` are the
only ones that import LangChain. No call may run inside a database transaction: callers write
results afterwards in short ones.

Tests replace the chat model through `llm_models.using_chat_model` with LangChain fake chat models;
everything else here (structured output, attempts, ledger) runs for real.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.conf import settings
from pydantic import BaseModel, ValidationError

from duoniche import metrics
from duoniche.enums import LLMPurpose
from duoniche.llm_budget import call_cost, disabled_reason
from duoniche.llm_models import (
    ChatModelConfig,
    build_chat_model,
    chat_model_config,
    model_label,
    provider_host,
)
from duoniche.models import LLMCall

if TYPE_CHECKING:
    # LangChain takes over a second to import: every process that loads the apps (each manage.py
    # command, each web worker) would pay it. It is imported where a model is called instead.
    from langchain_core.messages import BaseMessage

logger = logging.getLogger(__name__)

Output = TypeVar("Output", bound=BaseModel)

#: Application-level attempts per logical call; each attempt is a ledger row.
VALIDATION_ATTEMPTS = 2
TRANSLATION_ATTEMPTS = 2
ERROR_MESSAGE_MAX = 500


class LLMError(Exception):
    """Base of the two errors callers see."""


class LLMUnavailable(LLMError):
    """The purpose is disabled, or the provider could not be reached or answered with an error."""


class LLMBadOutput(LLMError):
    """The model answered, but not with the expected structure."""


@dataclass(frozen=True)
class Prompt(Generic[Output]):
    """A versioned prompt: `{placeholders}` in both templates, and the schema the model fills.

    Values are inserted verbatim (they are never re-parsed as templates), so untrusted content may
    contain braces; it belongs in the user template only, wrapped in data tags.
    """

    id: str
    version: str
    system: str
    user: str
    output: type[Output]

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def messages(self, values: Mapping[str, str]) -> list[BaseMessage]:
        from langchain_core.messages import HumanMessage, SystemMessage

        return [
            SystemMessage(content=self.system.format_map(values)),
            HumanMessage(content=self.user.format_map(values)),
        ]


# --- ledger -----------------------------------------------------------------------------------

_SECRETS = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-***"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s,;'\"]+"), r"\1***"),
    (
        re.compile(r"(?i)\b(api[_-]?key|key|token|secret|password|signature)=([^&\s'\"]+)"),
        r"\1=***",
    ),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://)[^/\s@]+@"), r"\1***@"),
)


def scrub(message: str) -> str:
    """An error message without credentials (keys, tokens, URL user info), truncated."""
    api_key = str(settings.OPENAI_API_KEY or "")
    if len(api_key) >= 4:
        message = message.replace(api_key, "***")
    for pattern, replacement in _SECRETS:
        message = pattern.sub(replacement, message)
    return message[:ERROR_MESSAGE_MAX]


def _usage(raw: Any) -> tuple[int | None, int | None]:
    usage = getattr(raw, "usage_metadata", None) or {}
    return usage.get("input_tokens"), usage.get("output_tokens")


def _error_usage(error: BaseException) -> tuple[int | None, int | None] | None:
    """Token usage of a response the SDK received but could not parse (None if there was none).

    With `json_schema` the OpenAI SDK parses the content itself and raises before LangChain sees
    the message; LangChain attaches the HTTP response to the exception, whose body has `usage`.
    """
    response = getattr(error, "response", None)
    if response is None or getattr(response, "status_code", None) != 200:
        return None
    try:
        usage = response.json().get("usage") or {}
    except Exception:  # an unreadable body: no usage to record
        return None
    input_tokens, output_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        input_tokens if isinstance(input_tokens, int) else None,
        output_tokens if isinstance(output_tokens, int) else None,
    )


def _is_bad_output(error: BaseException) -> bool:
    """Whether an exception raised during the request is about the model's output.

    The SDK validates `json_schema` content against the schema while reading the response, so
    unparsable or invalid output can surface as an exception of the call itself.
    """
    from langchain_core.exceptions import OutputParserException

    return isinstance(error, ValidationError | OutputParserException)


def _record(
    *,
    config: ChatModelConfig,
    operation: str,
    prompt_version: str,
    subject: str,
    attempt_no: int,
    started: float,
    usage: tuple[int | None, int | None] | None,
    error: BaseException | None,
) -> None:
    """One ledger row (autocommit: LLM calls never run inside a transaction) and the metrics.

    `usage` is None when no response arrived (then there is no cost either).
    """
    input_tokens, output_tokens = usage or (None, None)
    cost = call_cost(config.model, input_tokens, output_tokens) if usage is not None else None
    LLMCall.objects.create(
        purpose=config.purpose,
        operation=operation[:64],
        prompt_version=prompt_version[:32],
        model=config.model[:100],
        provider_host=provider_host(config.provider)[:255],
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=max(int((time.monotonic() - started) * 1000), 0),
        ok=error is None,
        error_type=type(error).__name__[:100] if error is not None else "",
        error_message=scrub(str(error)) if error is not None else "",
        cost_usd=cost,
        subject=subject[:64],
        attempt_no=attempt_no,
    )
    labels = {"purpose": config.purpose, "llm_model": model_label(config.model)}
    metrics.llm_calls.labels(**labels, outcome="ok" if error is None else "error").inc()
    if input_tokens:
        metrics.llm_input_tokens.labels(**labels).inc(input_tokens)
    if output_tokens:
        metrics.llm_output_tokens.labels(**labels).inc(output_tokens)
    if cost:
        metrics.llm_cost_usd.labels(**labels).inc(float(cost))


# --- calls ------------------------------------------------------------------------------------


class EmptyStructuredOutput(ValueError):
    """The model answered without the expected structure."""


def structured_call(
    *,
    purpose: str,
    prompt: Prompt[Output],
    values: Mapping[str, str],
    subject: str,
    attempts: int = 1,
    operation: str | None = None,
) -> Output:
    """Ask the model for `prompt.output`, with up to `attempts` tries; one ledger row per try.

    Raises `LLMUnavailable` (disabled purpose, transport or provider error on the last try) or
    `LLMBadOutput` (no valid structure on the last try).
    """
    reason = disabled_reason(purpose)
    if reason is not None:
        raise LLMUnavailable(reason)
    config = chat_model_config(purpose)
    try:
        runnable = build_chat_model(config).with_structured_output(
            prompt.output, method=settings.LLM_STRUCTURED_OUTPUT_METHOD, include_raw=True
        )
    except Exception as exc:  # a model that cannot be built makes no request: no ledger row
        raise LLMUnavailable(f"{type(exc).__name__}: {scrub(str(exc))}") from exc
    messages = prompt.messages(values)
    failure: LLMError = LLMUnavailable("no attempt made")
    for attempt_no in range(1, max(attempts, 1) + 1):
        started = time.monotonic()
        usage: tuple[int | None, int | None] | None = None
        error: BaseException | None = None
        parsed: Any = None
        try:
            result: Any = runnable.invoke(messages)
        except Exception as exc:  # the SDK's transport, timeout, provider and parsing errors
            error = exc
            if _is_bad_output(exc):
                usage = _error_usage(exc)
                failure = LLMBadOutput(f"{type(exc).__name__}: {scrub(str(exc))}")
            else:
                failure = LLMUnavailable(f"{type(exc).__name__}: {scrub(str(exc))}")
        else:
            raw = result.get("raw")
            usage = _usage(raw) if raw is not None else None
            parsed = result.get("parsed")
            error = result.get("parsing_error")
            if error is None and parsed is None:
                invalid = getattr(raw, "invalid_tool_calls", None)  # unparsable tool arguments
                error = EmptyStructuredOutput(
                    "tool call arguments are not valid JSON"
                    if invalid
                    else "empty structured output"
                )
            if error is None and not isinstance(parsed, prompt.output):
                try:
                    parsed = prompt.output.model_validate(parsed)
                except ValidationError as exc:
                    error = exc
            if error is not None:
                failure = LLMBadOutput(f"{type(error).__name__}: {scrub(str(error))}")
        _record(
            config=config,
            operation=operation or prompt.id,
            prompt_version=prompt.ref,
            subject=subject,
            attempt_no=attempt_no,
            started=started,
            usage=usage,
            error=error,
        )
        if error is None:
            return parsed
        logger.warning(
            "LLM %s attempt %s/%s failed: %s", prompt.id, attempt_no, attempts, type(error).__name__
        )
    raise failure


class PlainText(BaseModel):
    """The nominal output of a plain-text prompt: `text_call` returns the message text itself."""

    text: str


def text_call(
    *,
    purpose: str,
    prompt: Prompt[Any],
    values: Mapping[str, str],
    subject: str,
    attempt_no: int = 1,
    operation: str | None = None,
) -> str:
    """Ask the model for plain text (no schema): one request, one ledger row numbered `attempt_no`.

    Callers that ask again (e.g. with a shorter length target) call this once per request and
    number the attempts themselves. Raises `LLMUnavailable` (disabled purpose, transport or
    provider error) or `LLMBadOutput` (an empty answer).
    """
    reason = disabled_reason(purpose)
    if reason is not None:
        raise LLMUnavailable(reason)
    config = chat_model_config(purpose)
    try:
        model = build_chat_model(config)
    except Exception as exc:  # a model that cannot be built makes no request: no ledger row
        raise LLMUnavailable(f"{type(exc).__name__}: {scrub(str(exc))}") from exc
    started = time.monotonic()
    usage: tuple[int | None, int | None] | None = None
    error: BaseException | None = None
    failure: LLMError | None = None
    text = ""
    try:
        message = model.invoke(prompt.messages(values))
    except Exception as exc:  # the SDK's transport, timeout and provider errors
        error = exc
        failure = LLMUnavailable(f"{type(exc).__name__}: {scrub(str(exc))}")
    else:
        usage = _usage(message)
        text = message.text.strip()
        if not text:
            error = EmptyStructuredOutput("empty text output")
            failure = LLMBadOutput(str(error))
    _record(
        config=config,
        operation=operation or prompt.id,
        prompt_version=prompt.ref,
        subject=subject,
        attempt_no=attempt_no,
        started=started,
        usage=usage,
        error=error,
    )
    if failure is not None:
        logger.warning("LLM %s attempt %s failed: %s", prompt.id, attempt_no, type(error).__name__)
        raise failure
    return text


class ValidatorVerdict(BaseModel):
    """What an answer validator decided (feedback and tags still to be cleaned by the caller)."""

    is_correct: bool
    feedback: str
    error_tags: dict[str, list[str]] | None = None


def validate_answer(
    *, prompt: Prompt[Any], values: Mapping[str, str], subject: str
) -> ValidatorVerdict:
    """Judge a learner's answer with the validation model (2 attempts).

    `prompt.output` must have `is_correct`, `feedback` and `error_tags`.
    """
    parsed = structured_call(
        purpose=LLMPurpose.VALIDATION,
        prompt=prompt,
        values=values,
        subject=subject,
        attempts=VALIDATION_ATTEMPTS,
    )
    try:
        verdict = ValidatorVerdict.model_validate(parsed.model_dump())
    except ValidationError as exc:
        raise LLMBadOutput(f"{prompt.id} output does not fit a verdict") from exc
    return verdict


def translate_feedback(*, prompt: Prompt[Any], values: Mapping[str, str], subject: str) -> str:
    """Translate a verdict's feedback with the translation model (2 attempts).

    `prompt.output` must have `translated_text`.
    """
    parsed = structured_call(
        purpose=LLMPurpose.TRANSLATION,
        prompt=prompt,
        values=values,
        subject=subject,
        attempts=TRANSLATION_ATTEMPTS,
    )
    translated = parsed.model_dump().get("translated_text")
    if not isinstance(translated, str):
        raise LLMBadOutput(f"{prompt.id} output has no translated_text")
    return translated
