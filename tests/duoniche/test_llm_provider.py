"""The provider is configuration: LangChain's `init_chat_model` builds the chat models.

The "openai" provider is exercised for real (the langchain-openai client against the loopback fake
OpenAI server); a provider whose package is not installed must disable the LLM with a reason that
names the package, never fail a call with an ImportError.
"""

from __future__ import annotations

from importlib.util import find_spec

import pytest
from django.core.exceptions import ImproperlyConfigured
from langchain.chat_models import base as langchain_chat_models
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from duoniche import llm, llm_budget, llm_models
from duoniche.models import LLMCall
from exercises.generation import generation_disabled_reason
from exercises.prompts.generate import GENERATE_CHOOSE_SENTENCE, ChooseSentenceGeneration
from tests.fakes.openai_server import (
    FAKE_API_KEY,
    FAKE_MODEL,
    Reply,
    openai_server_fixture,  # noqa: F401
)

pytestmark = pytest.mark.django_db

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
#: A provider langchain knows whose package DuoNiche does not install.
MISSING = "anthropic"


def generate() -> ChooseSentenceGeneration:
    return llm.structured_call(
        purpose="generation",
        prompt=GENERATE_CHOOSE_SENTENCE,
        values=VALUES,
        subject="generation:Bulgarian:choose_sentence",
    )


def test_our_provider_table_is_the_one_of_the_installed_langchain():
    # `init_chat_model` of another langchain version may add or drop providers: update the table.
    assert set(llm_models.PROVIDER_PACKAGES) == set(langchain_chat_models._SUPPORTED_PROVIDERS)


def test_the_missing_provider_of_these_tests_is_really_missing():
    assert find_spec(llm_models.PROVIDER_PACKAGES[MISSING][0]) is None


def test_the_default_provider_builds_chat_openai_with_every_setting(openai_server, settings):
    settings.OPENAI_TEMPERATURE = 0.3
    settings.OPENAI_MAX_RETRIES = 3
    settings.OPENAI_REQUEST_TIMEOUT = 7.0

    model = llm_models.chat_model("generation")

    assert isinstance(model, ChatOpenAI)
    assert (model.model_name, model.temperature, model.max_retries) == (FAKE_MODEL, 0.3, 3)
    assert model.request_timeout == 7.0
    assert model.openai_api_base == openai_server.url
    assert isinstance(model.openai_api_key, SecretStr)
    assert model.openai_api_key.get_secret_value() == FAKE_API_KEY
    assert model.use_responses_api is False


def test_a_provider_prefix_in_the_model_name_reaches_the_server_without_it(openai_server, settings):
    settings.LLM_PROVIDER = "ollama"  # the prefix wins over the setting
    settings.OPENAI_GENERATION_MODEL_NAME = f"openai:{FAKE_MODEL}"
    settings.LLM_PRICES_JSON = {FAKE_MODEL: {"input": 1.0, "output": 2.0}}
    openai_server.script(Reply(GOOD, usage=(1000, 500)))

    assert generate() == ChooseSentenceGeneration.model_validate(GOOD)

    (request,) = openai_server.requests
    assert request.body["model"] == FAKE_MODEL
    assert request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    call = LLMCall.objects.get()
    assert (call.ok, call.model, call.provider_host) == (True, f"openai:{FAKE_MODEL}", "127.0.0.1")
    assert str(call.cost_usd) == "0.002000"  # priced by the name without the prefix


def test_a_colon_that_names_no_provider_stays_in_the_model_name():
    assert llm_models.split_model("llama3:8b") == (None, "llama3:8b")
    assert llm_models.split_model("Anthropic:claude-x") == ("anthropic", "claude-x")
    assert llm_models.split_model("openai:") == (None, "openai:")


@pytest.mark.parametrize("configure", ["setting", "prefix"])
def test_a_provider_without_its_package_disables_the_llm_naming_it(
    openai_server, settings, configure
):
    if configure == "setting":
        settings.LLM_PROVIDER = MISSING
    else:
        settings.OPENAI_MAIN_MODEL_NAME = f"{MISSING}:claude-sonnet-4-5"
    expected = (
        "the anthropic LLM provider needs the langchain-anthropic package "
        "(pip install langchain-anthropic, and pin it in requirements.txt)"
    )

    assert llm_budget.disabled_reason("generation") == expected
    assert generation_disabled_reason() == f"exercise generation disabled: {expected}"
    with pytest.raises(llm.LLMUnavailable, match="pip install langchain-anthropic"):
        generate()
    with pytest.raises(ImproperlyConfigured, match="langchain-anthropic"):
        llm_models.chat_model("generation")
    assert openai_server.requests == []
    assert LLMCall.objects.count() == 0


def test_an_unknown_provider_disables_the_llm_naming_the_setting(openai_server, settings):
    settings.LLM_PROVIDER = "acme"

    reason = llm_budget.disabled_reason("validation")

    assert reason is not None
    assert reason.startswith("unknown LLM provider 'acme' (set LLM_PROVIDER to one of: ")
    assert "openai" in reason
    with pytest.raises(llm.LLMUnavailable, match="unknown LLM provider"):
        generate()
    assert openai_server.requests == []


def test_another_provider_needs_no_openai_key_and_is_recorded_by_name(settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    settings.OPENAI_MAIN_MODEL_NAME = "model-x"
    settings.LLM_PROVIDER = "openai"
    assert not llm_models.llm_configured(llm_models.model_provider("generation"))

    settings.LLM_PROVIDER = "azure_openai"  # its package (langchain-openai) is installed

    assert llm_models.model_provider("generation") == "azure_openai"
    assert llm_budget.disabled_reason("generation") is None
    assert llm_models.provider_host("azure_openai") == "azure_openai"
