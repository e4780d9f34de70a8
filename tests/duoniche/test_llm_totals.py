"""The LLM ledger's totals per day, purpose and model, for what the list's filters select."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from duoniche.enums import LLMPurpose
from tests.duoniche.factories import LLMCallFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger():
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    cost = Decimal("0.010000")
    LLMCallFactory(created_at=now, input_tokens=100, output_tokens=10, cost_usd=cost)
    LLMCallFactory(created_at=now, input_tokens=50, output_tokens=5, cost_usd=cost, ok=False)
    LLMCallFactory(created_at=now, model="gpt-big", input_tokens=7, output_tokens=1)
    LLMCallFactory(created_at=yesterday, purpose=LLMPurpose.GENERATION, input_tokens=1000)
    return now


def rows_of(response):
    return [
        (r["purpose"], r["model"], r["calls"], r["failures"], r["input_tokens"], r["cost_usd"])
        for r in response.context["rows"]
    ]


def test_totals_group_by_day_purpose_and_model(admin_client, ledger, django_assert_max_num_queries):
    url = reverse("admin:duoniche_llmcall_totals")

    with django_assert_max_num_queries(8):
        response = admin_client.get(url)

    assert response.status_code == 200
    assert [row["day"] for row in response.context["rows"]] == [
        ledger.date(),
        ledger.date(),
        (ledger - timedelta(days=1)).date(),
    ]
    assert rows_of(response) == [
        ("validation", "gpt-big", 1, 0, 7, Decimal(0)),
        ("validation", "gpt-test", 2, 1, 150, Decimal("0.02")),
        ("generation", "gpt-test", 1, 0, 1000, Decimal(0)),
    ]
    total = response.context["total"]
    assert (total["calls"], total["failures"], total["input_tokens"]) == (4, 1, 1157)


def test_totals_follow_the_list_filters(admin_client, ledger):
    url = reverse("admin:duoniche_llmcall_totals") + "?purpose__exact=generation"

    response = admin_client.get(url)

    assert rows_of(response) == [("generation", "gpt-test", 1, 0, 1000, Decimal(0))]
    assert response.context["total"]["calls"] == 1


def test_no_calls_is_said_in_words(admin_client):
    response = admin_client.get(reverse("admin:duoniche_llmcall_totals"))

    assert "No LLM calls match these filters." in response.content.decode()


def test_the_ledger_links_its_totals_with_the_same_filters(admin_client, ledger):
    page = admin_client.get(reverse("admin:duoniche_llmcall_changelist") + "?ok__exact=0")

    assert reverse("admin:duoniche_llmcall_totals") + "?ok__exact=0" in page.content.decode()


@pytest.mark.parametrize(
    "query", ["created_at__gte=not-a-date", "bogus__field=1", "ok__exact=\x00"]
)
def test_a_bad_filter_goes_back_to_the_list_not_a_500(admin_client, ledger, query):
    response = admin_client.get(reverse("admin:duoniche_llmcall_totals") + "?" + query)

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")
