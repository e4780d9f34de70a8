"""The LLM's daily spend against its budget, the cost of a call, and whether a purpose may call.

Spend is summed from the `LLMCall` ledger (which only `duoniche.llm` writes) since 00:00 UTC and
cached for a minute. A call's cost comes from `LLM_PRICES_JSON` (USD per million tokens, by the
model's exact name or its longest priced prefix).

A purpose is enabled iff an LLM is configured (for "openai": an API key or a base URL; another
provider: its LangChain package is installed), its model name resolves (purpose setting, else
`OPENAI_MAIN_MODEL_NAME`) and today's spend is under the daily budget.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum
from django.utils import timezone

from duoniche import metrics
from duoniche.llm_models import (
    MODEL_SETTINGS,
    llm_configured,
    model_name,
    model_provider,
    provider_problem,
    split_model,
)
from duoniche.models import LLMCall

logger = logging.getLogger(__name__)

BUDGET_CACHE_SECONDS = 60


# --- spend and budget -------------------------------------------------------------------------


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


# --- cost -------------------------------------------------------------------------------------

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


# --- enabled purposes -------------------------------------------------------------------------


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
