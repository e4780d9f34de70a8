"""The operations dashboard on the admin index, and a smoke test of every admin page.

The dataset is built by hand with known numbers; the dashboard must show exactly them, each
number's link must open the changelist that lists exactly those rows, and the whole index must
stay under 30 queries.
"""

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from duoniche import dashboard, svg
from duoniche.dashboard import dashboard_build
from duoniche.jobs import JOBS
from exercises import dashboard as exercises_dashboard
from exercises.models import Exercise
from learning import dashboard as learning_dashboard
from notifications import dashboard as notifications_dashboard
from payments import dashboard as payments_dashboard
from tests.duoniche.factories import JobLockFactory, JobRunFactory, LLMCallFactory
from tests.exercises.factories import ExerciseFactory, ExerciseReviewFactory
from tests.learning.factories import (
    BotProfileFactory,
    ExerciseAttemptFactory,
    TelegramUserFactory,
    WeeklyReportFactory,
)
from tests.notifications.factories import NotificationLogFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


@pytest.fixture
def today() -> date:
    return timezone.localdate()


@pytest.fixture
def dataset(settings, today):
    """Known numbers across every section (comments give the expected figures)."""
    settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW = 5
    settings.LLM_DAILY_BUDGET_USD = 1.0
    t = start(today) + timedelta(minutes=1)  # today, whatever the hour the test runs
    y = start(today) - timedelta(hours=23)  # yesterday
    old = start(today) - timedelta(days=40)  # outside the 30-day window

    # Stock: Bulgarian fill A2 ×3 (one attempted) + B1 ×1; Serbian fill A1 ×1; Klingon (not a
    # configured bot) ×1. Funnel: 6 published, 2 pending_review, 1 pending_admin_review,
    # 1 archived, 1 rejected_by_assessor, 1 audio_generation_error.
    attempted = ExerciseFactory(language_level="A2")
    ExerciseFactory.create_batch(2, language_level="A2")
    ExerciseFactory(language_level="B1")
    ExerciseFactory(
        exercise_language="Serbian",
        language_level="A1",
        data={"text_with_blanks": "Hoću ___ kafu.", "words": ["jednu", "jedan"]},
    )
    ExerciseFactory(exercise_language="Klingon")
    for status, count in [
        ("pending_review", 2),
        ("pending_admin_review", 1),
        ("archived", 1),
        ("rejected_by_assessor", 1),
        ("audio_generation_error", 1),
    ]:
        ExerciseFactory.create_batch(count, status=status)

    # Activity: today 3 answered (2 correct) by 2 learners; yesterday 1 (wrong); one too old.
    ann, bob = TelegramUserFactory(), TelegramUserFactory()
    ExerciseAttemptFactory(user=ann, exercise=attempted, is_correct=True, created_at=t)
    ExerciseAttemptFactory(user=ann, exercise=attempted, is_correct=False, created_at=t)
    ExerciseAttemptFactory(user=bob, exercise=attempted, is_correct=True, created_at=t)
    ExerciseAttemptFactory(user=ann, exercise=attempted, is_correct=False, created_at=y)
    ExerciseAttemptFactory(user=bob, exercise=attempted, is_correct=True, created_at=old)
    Exercise.objects.filter(pk=attempted.pk).update(attempts_count=5)

    # Revenue: today 150 Stars kept from 2 payments and 20 refunded; yesterday 1000; one too old.
    PaymentFactory(amount=50, processed_at=t)
    PaymentFactory(amount=100, processed_at=t)
    PaymentFactory(amount=20, processed_at=t, status="refunded", refunded_at=t)
    PaymentFactory(amount=1000, processed_at=y)
    PaymentFactory(amount=500, processed_at=old)

    # LLM: today validation 2 calls (1 failed, 1 unpriced) + generation 1: $0.51; yesterday $2.
    LLMCallFactory(created_at=t, input_tokens=100, output_tokens=20, cost_usd=Decimal("0.01"))
    LLMCallFactory(created_at=t, ok=False, error_type="Timeout")
    LLMCallFactory(
        created_at=t,
        purpose="generation",
        input_tokens=1000,
        output_tokens=200,
        cost_usd=Decimal("0.5"),
    )
    LLMCallFactory(created_at=y, purpose="generation", cost_usd=Decimal("2"))
    LLMCallFactory(created_at=old, purpose="generation", cost_usd=Decimal("9"))

    # Notifications: today 2 sent + 1 failed; yesterday 1 skipped.
    NotificationLogFactory.create_batch(2, status="enqueued", created_at=t)
    NotificationLogFactory(status="failed", error="Forbidden: bot was blocked", created_at=t)
    NotificationLogFactory(status="skipped", created_at=y)

    # Jobs: refill_stock failed last (after a success) and holds a lock; an unregistered job.
    JobRunFactory(job="refill_stock", status="succeeded", started_at=y)
    JobRunFactory(job="refill_stock", status="failed", started_at=t, error="boom")
    JobRunFactory(job="legacy_job", status="succeeded", started_at=old)
    JobLockFactory(name="refill_stock")

    # Rows for the remaining admin pages.
    BotProfileFactory(user=ann)
    WeeklyReportFactory(user=ann)
    ExerciseReviewFactory(exercise=attempted)
    return {"attempted": attempted}


def build(**kwargs):
    return dashboard_build(now=timezone.now(), can_view=lambda perm: True, **kwargs)


# --- selectors ------------------------------------------------------------------------------------


def test_stock_per_language_type_and_level_against_the_target(dataset):
    counts = exercises_dashboard.exercise_counts(target=5)

    rows = {(row.language, row.exercise_type): row for row in counts.stock}
    bg_fill = rows[("Bulgarian", "fill_in_the_blank")]
    assert (bg_fill.published, bg_fill.untouched, bg_fill.deficit) == (4, 3, 2)
    assert bg_fill.levels["A2"] == exercises_dashboard.StockCell(published=3, untouched=2)
    assert bg_fill.levels["B1"] == exercises_dashboard.StockCell(published=1, untouched=1)
    assert (
        rows[("Serbian", "fill_in_the_blank")].untouched,
        rows[("Klingon", "fill_in_the_blank")].untouched,
    ) == (1, 1)
    # Every configured (language, type) is listed, even with no stock at all.
    assert rows[("Bulgarian", "choose_accent")].published == 0
    assert rows[("Bulgarian", "choose_accent")].deficit == 5
    assert ("Serbian", "choose_accent") not in rows  # excluded type of that language
    assert list(rows)[:4] == [
        ("Bulgarian", "fill_in_the_blank"),
        ("Bulgarian", "choose_sentence"),
        ("Bulgarian", "choose_accent"),
        ("Bulgarian", "story_comprehension"),
    ]


def test_funnel_counts_every_status(dataset):
    counts = exercises_dashboard.exercise_counts(target=5)

    assert counts.by_status == {
        "published": 6,
        "pending_review": 2,
        "pending_admin_review": 1,
        "archived": 1,
        "rejected_by_assessor": 1,
        "audio_generation_error": 1,
    }


def test_activity_per_day(dataset, today):
    days = [today - timedelta(days=n) for n in range(29, -1, -1)]

    series = learning_dashboard.attempts_per_day(days=days)

    assert [d.day for d in series] == days
    assert series[-1] == learning_dashboard.ActivityDay(
        today, answered=3, correct=2, active_users=2
    )
    assert series[-1].accuracy == pytest.approx(2 / 3)
    assert series[-2] == learning_dashboard.ActivityDay(today - timedelta(days=1), 1, 0, 1)
    assert sum(d.answered for d in series) == 4  # the 40-day-old attempt is outside
    assert series[0].accuracy is None


def test_revenue_llm_and_notifications_per_day(dataset, today):
    days = [today - timedelta(days=n) for n in range(29, -1, -1)]

    revenue = payments_dashboard.payments_per_day(days=days)
    llm = {(u.day, u.purpose): u for u in dashboard.llm_usage_per_day(days=days)}
    notes = notifications_dashboard.notifications_per_day(days=days)

    assert revenue[-1] == payments_dashboard.RevenueDay(today, 2, 150, 1, 20)
    assert revenue[-2].stars == 1000
    assert sum(d.stars for d in revenue) == 1150
    validation = llm[(today, "validation")]
    assert (validation.calls, validation.failed, validation.unpriced) == (2, 1, 1)
    assert (validation.input_tokens, validation.output_tokens) == (100, 20)
    assert validation.cost_usd == Decimal("0.01")
    assert llm[(today, "generation")].cost_usd == Decimal("0.5")
    assert llm[(today - timedelta(days=1), "generation")].cost_usd == Decimal("2")
    assert len(llm) == 3
    assert notes[-1].by_status == {"enqueued": 2, "failed": 1}
    assert notes[-2].by_status == {"skipped": 1}
    assert notes[0].total == 0


def test_last_run_of_each_job(dataset):
    states = {s.name: s for s in dashboard.job_states(registered=["refill_stock", "never_ran"])}

    assert list(states) == ["refill_stock", "never_ran", "legacy_job"]
    assert states["refill_stock"].last.status == "failed"
    assert states["refill_stock"].lock is not None
    assert states["never_ran"].last is None
    assert states["legacy_job"].registered is False
    assert states["legacy_job"].last.status == "succeeded"


# --- presentation ---------------------------------------------------------------------------------


def test_today_numbers_and_llm_budget(dataset):
    board = build()

    today = {number.label: number.value for number in board.today}
    assert today["pending review (queue)"] == 2
    assert today["pending admin review (queue)"] == 1
    assert today["answered today"] == 3
    assert today["active learners today"] == 2
    assert today["Stars today (2)"] == 150
    assert today["LLM cost today vs budget"] == "$0.51 / $1.00"
    assert today["notifications failed today"] == 1
    assert board.llm["cost_today"] == Decimal("0.51")
    assert board.llm["budget_percent"] == 51
    assert board.llm["unpriced_today"] == 1
    assert board.activity["accuracy"] == "50%"  # 2 of the 4 answers in the window
    assert [row["purpose"] for row in board.llm["totals"]][:2] == ["generation", "validation"]
    assert board.llm["totals"][0]["cost_usd"] == Decimal("2.5")
    jobs = {job["name"]: job for job in board.jobs}
    assert list(jobs) == [*JOBS, "legacy_job"]  # registered ones first, even if they never ran
    assert jobs["refill_stock"]["failed"] is True
    assert jobs["legacy_job"]["registered"] is False


def test_over_budget_is_flagged(dataset, settings):
    settings.LLM_DAILY_BUDGET_USD = 0.25

    board = build()

    cost = next(n for n in board.today if n.label.startswith("LLM cost"))
    assert cost.alert is True
    assert board.llm["budget_percent"] == 100


def test_no_budget_set(dataset, settings):
    settings.LLM_DAILY_BUDGET_USD = 0

    board = build()

    cost = next(n for n in board.today if n.label.startswith("LLM cost"))
    assert cost.value == "$0.51"
    assert cost.label == "LLM cost today (no budget set)"
    assert board.llm["budget_percent"] is None


def count_numbers(board):
    """Every dashboard number that counts rows, with the changelist that lists those rows."""
    numbers = [*board.funnel, *board.other_statuses]
    for row in board.stock:
        numbers += [row["untouched"], row["published"]]
        for cell in row["levels"]:
            numbers += [cell["published"], cell["untouched"]]
    numbers += [board.activity["answered"], board.activity["correct"]]
    numbers += [n for n in board.today if "queue" in n.label or n.label == "answered today"]
    numbers += [n for n in board.today if n.label == "notifications failed today"]
    for row in board.llm["totals"]:
        numbers += [row["calls"], row["failed"]]
    numbers.append(board.llm["calls_today"])
    numbers += board.notifications["totals"]
    return numbers


def test_every_count_links_to_the_changelist_of_exactly_those_rows(dataset, admin_client):
    board = build()
    numbers = count_numbers(board)
    assert len(numbers) > 80
    # Every non-zero count, and a sample of the zeros (empty stock cells are many and alike).
    zeros = [number for number in numbers if number.value == 0]
    numbers = [number for number in numbers if number.value != 0] + zeros[::8]
    assert len(numbers) > 40

    for number in numbers:
        response = admin_client.get(number.href)
        assert response.status_code == 200, number
        assert response.context["cl"].result_count == number.value, number


def test_money_numbers_link_to_their_payments(dataset, admin_client):
    board = build()

    kept = admin_client.get(board.revenue["stars"].href).context["cl"]
    refunded = admin_client.get(board.revenue["refunded_stars"].href).context["cl"]

    assert board.revenue["stars"].value == 1150
    assert sum(p.amount for p in kept.result_list) == 1150
    assert board.revenue["refunded_stars"].value == 20
    assert [p.amount for p in refunded.result_list] == [20]


def test_sections_follow_view_permissions(dataset, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        board = dashboard_build(
            now=timezone.now(), can_view=lambda perm: perm == "exercises.view_exercise"
        )

    assert board.sections == {"exercises"}
    assert board.funnel
    assert board.stock
    assert board.activity == {}
    assert board.jobs == []
    assert [n.label for n in board.today] == [
        "pending review (queue)",
        "pending admin review (queue)",
    ]


# --- the admin index ------------------------------------------------------------------------------


def dashboard_html(content: bytes) -> str:
    html = content.decode()
    return html[html.index('<div id="ops-dashboard">') : html.index('<div class="app-')]


def test_index_shows_the_dashboard_above_the_app_list_within_30_queries(
    dataset, admin_client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(29):
        response = admin_client.get(reverse("admin:index"))

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index('id="ops-dashboard"') < html.index('class="app-exercises')
    part = dashboard_html(response.content)
    pending = reverse("admin:exercises_exercise_changelist") + "?status__exact=pending_review"
    assert f'href="{pending}" data-status="pending_review">2</a>' in part
    for section in ("today", "stock", "funnel", "activity", "revenue", "llm", "notifications"):
        assert f'id="dashboard-{section}"' in part
    assert part.count("<svg") == 8
    assert "$0.51 / $1.00" in part
    assert "boom" in part  # the failed job's error
    assert "<script" not in part
    assert "http://" not in part.replace("http://www.w3.org", "")


def test_every_link_on_the_dashboard_opens(dataset, admin_client):
    response = admin_client.get(reverse("admin:index"))
    links = set(re.findall(r'href="([^"]+)"', dashboard_html(response.content)))
    # One link per filter but not per day: the charts repeat each changelist for 30 days.
    shapes = {}
    for link in sorted(unescape(href) for href in links):
        parts = urlsplit(link)
        params = parse_qsl(parts.query)
        key = (
            parts.path,
            tuple(sorted((k, "" if k.endswith(("__gte", "__lt")) else v) for k, v in params)),
        )
        shapes.setdefault(key, link)
    assert len(shapes) > 40

    for link in shapes.values():
        assert admin_client.get(link).status_code == 200, link


def test_staff_without_permissions_sees_no_dashboard(dataset, client):
    staff = User.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(staff)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert b'id="ops-dashboard"' not in response.content


def test_a_moderator_sees_the_exercise_sections_only(dataset, client):
    staff = User.objects.create_user("mod", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_exercise"))
    client.force_login(staff)

    response = client.get(reverse("admin:index"))

    part = dashboard_html(response.content)
    assert 'id="dashboard-stock"' in part
    assert 'id="dashboard-funnel"' in part
    assert 'id="dashboard-revenue"' not in part
    assert 'id="dashboard-llm"' not in part


def test_an_empty_database_renders(admin_client):
    response = admin_client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert "never ran" in dashboard_html(response.content)


# --- svg ------------------------------------------------------------------------------------------


def test_svg_charts_escape_text_and_link_bars():
    chart = svg.bar_chart(
        [svg.Bar("<a>", 3, 'say "hi"', "/admin/x/?a=1&b=2"), svg.Bar("b", 0)], label="L&L"
    )

    assert chart.startswith("<svg")
    assert chart.endswith("</svg>")
    assert "<a>" not in chart.replace('<a href="/admin/x/?a=1&amp;b=2">', "")
    assert "&lt;a&gt;" in chart
    assert "say &quot;hi&quot;" in chart
    assert "L&amp;L" in chart
    assert chart.count("<rect") == 1  # a zero bar draws nothing


def test_line_chart_scales_to_the_top():
    chart = svg.line_chart(
        ["a", "b"], [svg.Series("s", [0, 50])], label="x", top=100, width=560, height=118
    )

    # Plot height 118 - 18 - 8 = 92: 50 of 100 is half-way up from the baseline at y=100.
    assert 'points="48.0,100.0 556.0,54.0"' in chart


def test_a_line_breaks_where_there_is_no_value():
    chart = svg.line_chart(
        ["a", "b", "c", "d", "e"], [svg.Series("s", [1, 2, None, 3, None])], label="x"
    )

    assert chart.count("<polyline") == 1  # a-b; d alone is a dot
    assert chart.count("<circle") == 3


def test_day_labels_thin_out_and_the_last_stays_inside():
    labels = [f"d{n}" for n in range(30)]

    chart = svg.bar_chart([svg.Bar(label, 1) for label in labels], label="x", width=600)

    shown = re.findall(r">(d\d+)</text>", chart)
    assert shown == ["d0", "d5", "d10", "d15", "d20", "d25", "d29"]
    crowded = svg.bar_chart([svg.Bar(f"d{n}", 1) for n in range(26)], label="x")
    assert re.findall(r">(d\d+)</text>", crowded)[-2:] == ["d20", "d25"]  # d24 would touch d25
    assert '<text x="599.0" y="136" text-anchor="end"' in chart


# --- every admin page opens -----------------------------------------------------------------------

#: Registered models the dataset does not create (third-party); their change page is skipped.
NOT_CREATED = {
    "django_celery_beat.periodictask",
    "django_celery_beat.intervalschedule",
    "django_celery_beat.crontabschedule",
    "django_celery_beat.solarschedule",
    "django_celery_beat.clockedschedule",
    "auth.group",
}


def test_every_admin_changelist_change_page_search_and_filter_opens(dataset, admin_client, today):
    # A failed sign-in, so that the lockout's audit pages (django-axes) have a row to open.
    Client().post(reverse("admin:login"), {"username": "nobody", "password": "wrong"})
    phone_owner = User.objects.create_user("phone-owner", is_staff=True)
    TOTPDevice.objects.create(user=phone_owner, name="phone")  # a two-factor device to open
    missing = set()
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = admin_client.get(changelist)
        assert response.status_code == 200, changelist
        cl = response.context["cl"]
        for spec in cl.filter_specs:
            # "All" and the first few values of each filter (topics alone have 28 values).
            for choice in list(spec.choices(cl))[:4]:
                url = changelist + choice["query_string"]
                assert admin_client.get(url).status_code == 200, url
        if model_admin.search_fields:
            for term in ("a", "42"):
                url = f"{changelist}?q={term}"
                assert admin_client.get(url).status_code == 200, url
        if model_admin.date_hierarchy:
            field = model_admin.date_hierarchy
            url = (
                f"{changelist}?{field}__year={today.year}&{field}__month={today.month}"
                f"&{field}__day={today.day}"
            )
            assert admin_client.get(url).status_code == 200, url
        if model_admin.has_add_permission(response.wsgi_request):
            add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
            assert admin_client.get(add).status_code == 200, add
        obj = model._default_manager.order_by("pk").first()
        if obj is None:
            missing.add(opts.label_lower)
            continue
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert admin_client.get(change).status_code == 200, change
        history = reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk])
        assert admin_client.get(history).status_code == 200, history

    assert missing <= NOT_CREATED
    assert "payments.payment" in {m._meta.label_lower for m in admin.site._registry}


# --- the cache of the figures ---------------------------------------------------------------------


def test_figures_are_reused_for_a_minute(dataset, django_assert_num_queries):
    first = build()
    ExerciseFactory(status="pending_review")

    with django_assert_num_queries(0):
        again = build()

    assert again.cached_at == first.cached_at
    assert next(n for n in again.funnel if n.label == "pending_review").value == 2  # not yet 3
    cache.clear()
    fresh = build()
    assert next(n for n in fresh.funnel if n.label == "pending_review").value == 3
    assert fresh.cached_at > first.cached_at


def test_a_cache_that_is_down_costs_only_time(dataset, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing listens
        }
    }

    board = build()

    assert next(n for n in board.funnel if n.label == "pending_review").value == 2
    assert "dashboard cache unavailable" in caplog.text
