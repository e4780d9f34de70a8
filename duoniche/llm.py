"""The one LLM boundary: chat models per purpose, structured calls, the ledger, cost and budget.

This is the only module that imports LangChain. Apps hand it a `Prompt` (id, version, templates,
output schema) and get Pydantic models or plain values back; they never see SDK exceptions, only
`LLMUnavailable` (transport, timeout, provider error, purpose disabled) and `LLMBadOutput`
(unparsable or invalid structure). Every request, successful or not, leaves one `LLMCall` row.

Chat models are built by LangChain's `init_chat_model`, so the provider is configuration:
`LLM_PROVIDER` (default "openai", which also covers OpenAI-compatible servers through
`OPENAI_BASE_URL`), or a `provider:model` model name. The `OPENAI_*` key and base URL apply to the
"openai" provider only; the others read their own credentials (e.g. `ANTHROPIC_API_KEY`).

A purpose is enabled iff an LLM is configured (for "openai": an API key or a base URL; another
provider: its LangChain package is installed), its model name resolves (purpose setting, else
`OPENAI_MAIN_MODEL_NAME`) and today's spend is under the daily budget. No call may run inside a
database transaction: callers write results afterwards in short ones.

Tests replace the chat model through `set_chat_model_factory` / `using_chat_model` with LangChain
fake chat models; everything else here (structured output, attempts, ledger) runs for real.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Sum
from django.utils import timezone
from pydantic import BaseModel, SecretStr, ValidationError

from duoniche import metrics
from duoniche.enums import LLMPurpose
from duoniche.models import LLMCall

if TYPE_CHECKING:
    # LangChain and the OpenAI SDK take over a second to import: every process that loads the
    # apps (each manage.py command, each web worker) would pay it. They are imported where a model
    # is built or called instead.
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import BaseMessage

logger = logging.getLogger(__name__)

Output = TypeVar("Output", bound=BaseModel)

#: Application-level attempts per logical call; each attempt is a ledger row.
VALIDATION_ATTEMPTS = 2
TRANSLATION_ATTEMPTS = 2
#: Sent as the API key to OpenAI-compatible servers that need the header but ignore its value.
PLACEHOLDER_API_KEY = "not-needed"
OPENAI_HOST = "api.openai.com"
BUDGET_CACHE_SECONDS = 60
ERROR_MESSAGE_MAX = 500

#: The providers `langchain.chat_models.init_chat_model` (langchain 1.1) builds, with the module
#: each needs and the pip package that holds it. Checked without importing anything, so a missing
#: package disables the LLM with a reason instead of failing a request with an ImportError.
PROVIDER_PACKAGES: dict[str, tuple[str, str]] = {
    "openai": ("langchain_openai", "langchain-openai"),
    "azure_openai": ("langchain_openai", "langchain-openai"),
    "anthropic": ("langchain_anthropic", "langchain-anthropic"),
    "azure_ai": ("langchain_azure_ai", "langchain-azure-ai"),
    "cohere": ("langchain_cohere", "langchain-cohere"),
    "google_vertexai": ("langchain_google_vertexai", "langchain-google-vertexai"),
    "google_genai": ("langchain_google_genai", "langchain-google-genai"),
    "google_anthropic_vertex": ("langchain_google_vertexai", "langchain-google-vertexai"),
    "fireworks": ("langchain_fireworks", "langchain-fireworks"),
    "ollama": ("langchain_ollama", "langchain-ollama"),
    "together": ("langchain_together", "langchain-together"),
    "mistralai": ("langchain_mistralai", "langchain-mistralai"),
    "huggingface": ("langchain_huggingface", "langchain-huggingface"),
    "groq": ("langchain_groq", "langchain-groq"),
    "bedrock": ("langchain_aws", "langchain-aws"),
    "bedrock_converse": ("langchain_aws", "langchain-aws"),
    "deepseek": ("langchain_deepseek", "langchain-deepseek"),
    "ibm": ("langchain_ibm", "langchain-ibm"),
    "xai": ("langchain_xai", "langchain-xai"),
    "perplexity": ("langchain_perplexity", "langchain-perplexity"),
}

MODEL_SETTINGS: dict[str, str] = {
    LLMPurpose.GENERATION: "OPENAI_GENERATION_MODEL_NAME",
    LLMPurpose.VALIDATION: "OPENAI_VALIDATION_MODEL_NAME",
    LLMPurpose.ASSESSMENT: "OPENAI_ASSESSOR_MODEL_NAME",
    LLMPurpose.TRANSLATION: "OPENAI_TRANSLATOR_MODEL_NAME",
    LLMPurpose.REPORTS: "OPENAI_REPORTS_MODEL_NAME",
}


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


@dataclass(frozen=True)
class ChatModelConfig:
    """Everything a chat model is built from; all of it is honoured."""

    purpose: str
    #: The configured model name, as the ledger records it (it may carry a `provider:` prefix).
    model: str
    provider: str
    api_key: str
    base_url: str
    temperature: float | None
    timeout: float
    max_retries: int


ChatModelFactory = Callable[[ChatModelConfig], "BaseChatModel"]


def provider_chat_model(config: ChatModelConfig) -> BaseChatModel:
    """The provider's chat model, built by LangChain's `init_chat_model`.

    For "openai": `ChatOpenAI` for OpenAI, or for an OpenAI-compatible server when a base URL is
    set. Raises `ImproperlyConfigured` for an unknown provider or one whose package is missing.
    """
    problem = provider_problem(config.provider)
    if problem is not None:
        raise ImproperlyConfigured(problem)
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {"timeout": config.timeout, "max_retries": config.max_retries}
    if config.temperature is not None:  # unset: not sent, for models that reject it
        kwargs["temperature"] = config.temperature
    if config.provider == "openai":
        kwargs["api_key"] = SecretStr(config.api_key or PLACEHOLDER_API_KEY)
        if config.base_url:
            kwargs["base_url"] = config.base_url
            kwargs["use_responses_api"] = False
    _, model = split_model(config.model)
    return init_chat_model(model, model_provider=config.provider, **kwargs)


_chat_model_factory: ChatModelFactory = provider_chat_model


def set_chat_model_factory(factory: ChatModelFactory | None) -> ChatModelFactory:
    """Replace how chat models are built (None: the provider's again); returns the previous."""
    global _chat_model_factory
    previous = _chat_model_factory
    _chat_model_factory = factory or provider_chat_model
    return previous


@contextmanager
def using_chat_model(factory: ChatModelFactory) -> Iterator[None]:
    """Build chat models with `factory` inside the block (tests pass LangChain fake models)."""
    previous = set_chat_model_factory(factory)
    try:
        yield
    finally:
        set_chat_model_factory(previous)


# --- configuration and budget -----------------------------------------------------------------


def llm_configured(provider: str = "openai") -> bool:
    """Whether `provider` can be asked: "openai" needs a key or a base URL; the others bring their
    own credentials from their environment (the provider's package reads them)."""
    if provider != "openai":
        return True
    return bool(settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL)


def model_name(purpose: str) -> str:
    """The model for a purpose: its own setting, else `OPENAI_MAIN_MODEL_NAME` ("" if neither)."""
    own = str(getattr(settings, MODEL_SETTINGS[purpose], "") or "").strip()
    return own or str(settings.OPENAI_MAIN_MODEL_NAME or "").strip()


def split_model(name: str) -> tuple[str | None, str]:
    """`("anthropic", "claude-x")` for "anthropic:claude-x"; `(None, name)` when the part before
    a colon is not a known provider (Ollama tags such as "llama3:8b" keep their colon)."""
    prefix, colon, rest = name.partition(":")
    provider = prefix.strip().lower().replace("-", "_")
    if colon and rest and provider in PROVIDER_PACKAGES:
        return provider, rest
    return None, name


def model_provider(purpose: str) -> str:
    """The provider of a purpose's model: its `provider:` prefix, else `LLM_PROVIDER`."""
    provider, _ = split_model(model_name(purpose))
    return provider or str(settings.LLM_PROVIDER or "openai")


def provider_problem(provider: str) -> str | None:
    """Why chat models of `provider` cannot be built here (unknown, package missing), or None."""
    if provider not in PROVIDER_PACKAGES:
        known = ", ".join(sorted(PROVIDER_PACKAGES))
        return f"unknown LLM provider {provider!r} (set LLM_PROVIDER to one of: {known})"
    module, package = PROVIDER_PACKAGES[provider]
    if find_spec(module) is None:
        return (
            f"the {provider} LLM provider needs the {package} package "
            f"(pip install {package}, and pin it in requirements.txt)"
        )
    return None


def model_label(model: str) -> str:
    """A metric label for a model: one of the configured model names, else "other"."""
    configured = {model_name(purpose) for purpose in MODEL_SETTINGS}
    return model if model and model in configured else metrics.OTHER


def chat_model_config(purpose: str) -> ChatModelConfig:
    return ChatModelConfig(
        purpose=purpose,
        model=model_name(purpose),
        provider=model_provider(purpose),
        api_key=str(settings.OPENAI_API_KEY or ""),
        base_url=str(settings.OPENAI_BASE_URL or ""),
        temperature=settings.OPENAI_TEMPERATURE,
        timeout=float(settings.OPENAI_REQUEST_TIMEOUT),
        max_retries=int(settings.OPENAI_MAX_RETRIES),
    )


def chat_model(purpose: str) -> BaseChatModel:
    """The chat model for `purpose`, built by the current factory."""
    return _chat_model_factory(chat_model_config(purpose))


def provider_host(provider: str = "openai") -> str:
    """Host of the provider (never credentials or a path), for the ledger; another provider than
    "openai" is recorded by its name (its package knows the host)."""
    if provider != "openai":
        return provider
    if not settings.OPENAI_BASE_URL:
        return OPENAI_HOST
    try:
        return urlsplit(str(settings.OPENAI_BASE_URL)).hostname or ""
    except ValueError:
        return ""


def _utc_midnight(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def spent_today(now: datetime | None = None) -> Decimal:
    """USD spent since 00:00 UTC (from the ledger, cached for a minute)."""
    midnight = _utc_midnight(now or timezone.now())
    key = f"llm:spent:{midnight.date().isoformat()}"
    cached = cache.get(key)
    if cached is not None:
        return Decimal(cached)
    total = LLMCall.objects.filter(created_at__gte=midnight).aggregate(total=Sum("cost_usd"))
    spent = total["total"] or Decimal(0)
    cache.set(key, str(spent), BUDGET_CACHE_SECONDS)
    return spent


def budget_exhausted(now: datetime | None = None) -> bool:
    """Whether today's spend reached `LLM_DAILY_BUDGET_USD`; keeps the budget gauge up to date."""
    budget = settings.LLM_DAILY_BUDGET_USD
    now = now or timezone.now()
    exhausted = bool(budget and budget > 0 and spent_today(now) >= Decimal(str(budget)))
    metrics.llm_budget_exhausted.set(1 if exhausted else 0)
    if not exhausted:
        return False
    day = _utc_midnight(now).date().isoformat()
    if cache.add(f"llm:budget-warned:{day}", True, int(timedelta(days=1).total_seconds())):
        logger.warning(
            "LLM daily budget of %s USD reached; LLM purposes disabled until 00:00 UTC", budget
        )
    return True


def disabled_reason(purpose: str) -> str | None:
    """Why `purpose` is disabled, or None when it may call the model."""
    provider = model_provider(purpose)
    if not llm_configured(provider):
        return "no LLM configured (set OPENAI_API_KEY, or OPENAI_BASE_URL for a compatible server)"
    if not model_name(purpose):
        return (
            f"no model configured for {purpose} "
            f"(set OPENAI_MAIN_MODEL_NAME or {MODEL_SETTINGS[purpose]})"
        )
    problem = provider_problem(provider)
    if problem is not None:
        return problem
    if budget_exhausted():
        return "daily LLM budget exhausted"
    return None


def purpose_enabled(purpose: str) -> bool:
    return disabled_reason(purpose) is None


# --- cost and ledger --------------------------------------------------------------------------

_unpriced_models: set[str] = set()


def _price(model: str) -> dict[str, Any] | None:
    """The price of `model`, else of its name without a `provider:` prefix."""
    prices: dict[str, Any] = settings.LLM_PRICES_JSON
    for name in dict.fromkeys((model, split_model(model)[1])):
        if name in prices:
            return dict(prices[name])
        prefixes = [known for known in prices if name.startswith(known)]
        if prefixes:
            return dict(prices[max(prefixes, key=len)])
    return None


def call_cost(model: str, input_tokens: int | None, output_tokens: int | None) -> Decimal | None:
    """USD for one call from `LLM_PRICES_JSON` (USD per million tokens); None when unknown."""
    price = _price(model)
    if price is None:
        if model not in _unpriced_models:
            _unpriced_models.add(model)
            logger.warning("no price for LLM model %s in LLM_PRICES_JSON; cost not recorded", model)
        return None
    tokens_cost = Decimal(str(input_tokens or 0)) * Decimal(str(price["input"])) + Decimal(
        str(output_tokens or 0)
    ) * Decimal(str(price["output"]))
    return (tokens_cost / Decimal(1_000_000)).quantize(Decimal("0.000001"))


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
        runnable = _chat_model_factory(config).with_structured_output(
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
        model = _chat_model_factory(config)
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
