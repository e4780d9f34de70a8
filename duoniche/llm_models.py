"""Which chat model answers each LLM purpose, and how it is built.

Chat models are built by LangChain's `init_chat_model`, so the provider is configuration:
`LLM_PROVIDER` (default "openai", which also covers OpenAI-compatible servers through
`OPENAI_BASE_URL`), or a `provider:model` model name. The `OPENAI_*` key and base URL apply to the
"openai" provider only; the others read their own credentials (e.g. `ANTHROPIC_API_KEY`).

A purpose's model is its own setting (`MODEL_SETTINGS`), else `OPENAI_MAIN_MODEL_NAME`. Nothing
here sends a request or writes the ledger: the calls are `duoniche.llm`'s.

Tests replace the chat model through `set_chat_model_factory` / `using_chat_model` with LangChain
fake chat models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pydantic import SecretStr

from duoniche import metrics
from duoniche.enums import LLMPurpose

if TYPE_CHECKING:
    # LangChain and the OpenAI SDK take over a second to import: every process that loads the
    # apps (each manage.py command, each web worker) would pay it. They are imported where a model
    # is built instead.
    from langchain_core.language_models.chat_models import BaseChatModel

#: Sent as the API key to OpenAI-compatible servers that need the header but ignore its value.
PLACEHOLDER_API_KEY = "not-needed"
OPENAI_HOST = "api.openai.com"

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


def build_chat_model(config: ChatModelConfig) -> BaseChatModel:
    """The chat model for `config`, built by the current factory."""
    return _chat_model_factory(config)


def chat_model(purpose: str) -> BaseChatModel:
    """The chat model for `purpose`, built by the current factory."""
    return build_chat_model(chat_model_config(purpose))


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
