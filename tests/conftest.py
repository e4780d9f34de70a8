"""Shared fixtures: a clean Redis cache per test, and a scripted LLM for the tests that need one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache

from duoniche import llm_models
from tests.fakes.llm import ScriptedChatModel


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def fake_llm(settings) -> Iterator[ScriptedChatModel]:
    """An LLM configured in settings, answered by a `ScriptedChatModel` (set its `script`)."""
    settings.OPENAI_API_KEY = "test"
    settings.OPENAI_MAIN_MODEL_NAME = "fake-model"
    model = ScriptedChatModel()
    with llm_models.using_chat_model(lambda config: model):
        yield model


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium for the browser tests (tests/browser.py)."""
    from tests.browser import chromium

    with chromium() as driver:
        yield driver
