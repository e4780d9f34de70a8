"""The learner admin goes through the services: settings checked like the API, Unblock,
Regenerate detailed report, and pages people can read (no `null`, no escaped tags, no JSON)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from duoniche.api.errors import ApplicationError
from duoniche.enums import ProfileStatus, ReportStatus
from learning.models import BotProfile, TelegramUser, WeeklyReport
from learning.profiles import profile_unblock
from learning.report_services import report_staff_regenerate
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import (
    BotProfileFactory,
    ExerciseAttemptFactory,
    TelegramUserFactory,
    WeeklyReportFactory,
)
from tests.learning.test_admin import submitted

pytestmark = pytest.mark.django_db


def messages_of(response):
    return [(m.level_tag, str(m.message)) for m in response.context["messages"]]


def writes_to(queries, table):
    return [q["sql"] for q in queries if q["sql"].startswith(f'UPDATE "{table}"')]


@pytest.fixture
def profile():
    return BotProfileFactory(
        user=TelegramUserFactory(username="ann", custom_settings={"session_exercise_limit": 20}),
        settings={"alphabet": "cyrillic"},
    )


def profile_page(admin_client, profile):
    url = reverse("admin:learning_botprofile_change", args=[profile.pk])
    return url, admin_client.get(url)


def user_page(admin_client, user):
    url = reverse("admin:learning_telegramuser_change", args=[user.pk])
    return url, admin_client.get(url)


# --- settings: the API's rules on the admin's forms -----------------------------------------------


def test_settings_are_edited_as_key_value_lines(admin_client, profile):
    _, page = profile_page(admin_client, profile)

    form = page.context["adminform"].form
    assert form["settings"].value() == "alphabet: cyrillic"
    _, page = user_page(admin_client, profile.user)
    assert page.context["adminform"].form["custom_settings"].value() == (
        "session_exercise_limit: 20"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "session_exercise_limit: 0",
            "session_exercise_limit: should be a whole number, at least 1",
        ),
        ("alphabet: klingon", "alphabet: should be one of the alphabets"),
        ('exclude_topics: ["no such topic"]', "exclude_topics: should be a list of topics"),
        ("just some words", "Line 1 is not of the form key: value."),
        ("alphabet: latin\nalphabet: cyrillic", "The setting alphabet is given twice."),
        ("note: a\u0000b", "Not storable"),
    ],
)
def test_a_bad_profile_setting_is_a_form_error_and_nothing_is_written(
    admin_client, profile, text, message
):
    url, page = profile_page(admin_client, profile)
    data = submitted(page, "botprofile_form", settings=text, language_level="C1")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(url, data)

    assert response.status_code == 200  # the form again, not a 500
    errors = response.context["adminform"].form.errors
    assert any(message in error for error in errors["settings"]), errors
    assert not writes_to(queries, "learning_botprofile")
    profile.refresh_from_db()
    assert (profile.settings, profile.language_level) == ({"alphabet": "cyrillic"}, "A2")


def test_a_bad_custom_setting_of_a_user_is_a_form_error_and_nothing_is_written(
    admin_client, profile
):
    url, page = user_page(admin_client, profile.user)
    data = submitted(
        page, "telegramuser_form", custom_settings="min_session_interval_minutes: -5", cohort="x"
    )

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(url, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["custom_settings"]
    assert errors == ["min_session_interval_minutes: should be a whole number, at least 0"]
    assert not writes_to(queries, "learning_telegramuser")
    assert not writes_to(queries, "learning_botprofile")
    user = TelegramUser.objects.get(pk=profile.user_id)
    assert (user.custom_settings, user.cohort) == ({"session_exercise_limit": 20}, None)


def test_an_unknown_key_is_kept_with_a_warning(admin_client, profile):
    url, page = profile_page(admin_client, profile)
    data = submitted(page, "botprofile_form", settings="alphabet: latin\nfavourite_colour: green")

    response = admin_client.post(url, data, follow=True)

    assert response.status_code == 200
    [warning] = [text for level, text in messages_of(response) if level == "warning"]
    assert "favourite_colour" in warning
    profile.refresh_from_db()
    assert profile.settings == {"alphabet": "latin", "favourite_colour": "green"}


def test_an_unknown_key_on_the_user_page_is_kept_with_a_warning(admin_client, profile):
    url, page = user_page(admin_client, profile.user)
    data = submitted(
        page,
        "telegramuser_form",
        custom_settings="session_exercise_limit: 30\nmood: sunny",
        **{"profiles-0-settings": "exercises_in_set: 4\nshoe_size: 42"},
    )

    response = admin_client.post(url, data, follow=True)

    warnings = [text for level, text in messages_of(response) if level == "warning"]
    assert len(warnings) == 2
    assert any("mood" in text for text in warnings)
    assert any("shoe_size" in text for text in warnings)
    user = TelegramUser.objects.get(pk=profile.user_id)
    assert user.custom_settings == {"session_exercise_limit": 30, "mood": "sunny"}
    profile.refresh_from_db()
    assert profile.settings == {"exercises_in_set": 4, "shoe_size": 42}


def test_emptying_the_settings_stores_none_and_saves_only_that_field(admin_client, profile):
    url, page = profile_page(admin_client, profile)
    data = submitted(page, "botprofile_form", settings="")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(url, data)

    assert response.status_code == 302
    [update] = writes_to(queries, "learning_botprofile")
    assert '"settings"' in update
    assert '"language_level"' not in update
    profile.refresh_from_db()
    assert profile.settings is None


def test_an_unchanged_page_writes_nothing(admin_client, profile):
    url, page = user_page(admin_client, profile.user)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(url, submitted(page, "telegramuser_form"))

    assert response.status_code == 302
    assert not writes_to(queries, "learning_telegramuser")
    assert not writes_to(queries, "learning_botprofile")


def test_users_and_profiles_are_not_added_in_the_admin(admin_client):
    assert admin_client.get(reverse("admin:learning_telegramuser_add")).status_code == 403
    assert admin_client.get(reverse("admin:learning_botprofile_add")).status_code == 403


# --- unblock --------------------------------------------------------------------------------------


@pytest.fixture
def blocked():
    return BotProfileFactory(status=ProfileStatus.BLOCKED, reason="bot was blocked by the user")


def test_unblock_makes_the_profile_active_as_the_next_action_would(blocked):
    assert profile_unblock(profile_id=blocked.pk) is True

    blocked.refresh_from_db()
    assert (blocked.status, blocked.reason) == (ProfileStatus.ACTIVE, None)
    assert profile_unblock(profile_id=blocked.pk) is False  # not blocked: nothing to do
    with pytest.raises(ApplicationError) as error:
        profile_unblock(profile_id=987_654)
    assert error.value.code == "profile_not_found"


def test_unblock_action(admin_client, blocked):
    active = BotProfileFactory()

    response = admin_client.post(
        reverse("admin:learning_botprofile_changelist"),
        {"action": "unblock", "_selected_action": [blocked.pk, active.pk], "index": "0"},
        follow=True,
    )

    assert messages_of(response) == [
        ("success", "1 profile unblocked: it gets notifications again."),
        ("warning", "1 profile was not blocked and was left as it was."),
    ]
    blocked.refresh_from_db()
    assert blocked.status == ProfileStatus.ACTIVE


def test_unblock_button_is_on_the_page_of_a_blocked_profile_only(admin_client, blocked):
    _, page = profile_page(admin_client, blocked)
    assert 'id="unblock-form"' in page.content.decode()
    url = reverse("admin:learning_botprofile_unblock", args=[blocked.pk])

    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)

    assert response.status_code == 302
    page = admin_client.get(response["Location"])
    assert messages_of(page) == [("success", f"{blocked} unblocked: it gets notifications again.")]
    assert 'id="unblock-form"' not in page.content.decode()
    blocked.refresh_from_db()
    assert blocked.status == ProfileStatus.ACTIVE
    history = admin_client.get(
        reverse("admin:learning_botprofile_history", args=[blocked.pk])
    ).content.decode()
    assert "Unblocked" in history


def test_unblock_needs_the_change_permission(client, blocked):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_botprofile"))
    client.force_login(viewer)

    page = client.get(reverse("admin:learning_botprofile_change", args=[blocked.pk]))
    response = client.post(reverse("admin:learning_botprofile_unblock", args=[blocked.pk]))

    assert 'id="unblock-form"' not in page.content.decode()
    assert response.status_code == 403
    blocked.refresh_from_db()
    assert blocked.status == ProfileStatus.BLOCKED


# --- regenerate the detailed report ---------------------------------------------------------------


@pytest.fixture
def generated():
    """A detailed report written an hour ago, not sent yet, for a learner with a week of work."""
    now = timezone.now()
    profile = BotProfileFactory()
    report = WeeklyReportFactory(
        user=profile.user,
        bot_id=profile.bot_id,
        status=ReportStatus.GENERATED,
        full_report="An old text",
        full_generated_at=now - timedelta(hours=1),
        status_changed_at=now - timedelta(hours=1),
        generation_attempts=1,
    )
    ExerciseAttemptFactory(user=profile.user, exercise=ExerciseFactory(), is_correct=True)
    return report


@pytest.mark.parametrize("status", [ReportStatus.GENERATED, ReportStatus.FAILED])
def test_regenerate_forces_a_new_text_through_the_job(generated, status):
    WeeklyReport.objects.filter(pk=generated.pk).update(status=status)

    # The test settings run Celery tasks eagerly: the job writes the report as the worker would.
    result = report_staff_regenerate(report_id=generated.pk, now=timezone.now())

    assert result.outcome == "queued"
    generated.refresh_from_db()
    assert generated.status == ReportStatus.GENERATED
    assert generated.full_report
    assert generated.full_report != "An old text"
    assert generated.generation_attempts == 2
    assert generated.generation_queued_at is not None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (ReportStatus.SENT, "sent"),
        (ReportStatus.GENERATING, "busy"),
        (ReportStatus.PENDING, "not_requested"),
    ],
)
def test_regenerate_leaves_sent_running_and_unrequested_reports_alone(generated, status, outcome):
    WeeklyReport.objects.filter(pk=generated.pk).update(
        status=status, status_changed_at=timezone.now()
    )

    result = report_staff_regenerate(report_id=generated.pk, now=timezone.now())

    assert (result.outcome, result.status) == (outcome, status)
    generated.refresh_from_db()
    assert (generated.full_report, generated.generation_attempts) == ("An old text", 1)


def test_regenerate_of_an_unknown_report(db):
    with pytest.raises(ApplicationError) as error:
        report_staff_regenerate(report_id=987_654, now=timezone.now())
    assert error.value.code == "report_not_found"


def test_regenerate_action(admin_client, generated):
    sent = WeeklyReportFactory(status=ReportStatus.SENT, full_report="Delivered")

    response = admin_client.post(
        reverse("admin:learning_weeklyreport_changelist"),
        {
            "action": "regenerate_detailed_report",
            "_selected_action": [generated.pk, sent.pk],
            "index": "0",
        },
        follow=True,
    )

    assert messages_of(response) == [
        (
            "success",
            f"Report #{generated.pk}: a new detailed report is being written; "
            f"its status is now {ReportStatus.GENERATED.label}.",
        ),
        (
            "warning",
            f"Report #{sent.pk}: the detailed report was already sent to the learner, "
            "so it was not regenerated.",
        ),
    ]
    generated.refresh_from_db()
    assert generated.full_report != "An old text"
    sent.refresh_from_db()
    assert sent.full_report == "Delivered"


def test_regenerate_button_on_the_report_page(admin_client, generated):
    page_url = reverse("admin:learning_weeklyreport_change", args=[generated.pk])
    assert 'id="regenerate-report-form"' in admin_client.get(page_url).content.decode()
    url = reverse("admin:learning_weeklyreport_regenerate", args=[generated.pk])

    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)

    assert response["Location"] == page_url
    page = admin_client.get(page_url)
    [(level, text)] = messages_of(page)
    assert level == "success"
    assert "a new detailed report is being written" in text
    assert (
        "Regenerate detailed report"
        in admin_client.get(
            reverse("admin:learning_weeklyreport_history", args=[generated.pk])
        ).content.decode()
    )


def test_regenerate_needs_the_change_permission(client, generated):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_weeklyreport"))
    client.force_login(viewer)

    page = client.get(reverse("admin:learning_weeklyreport_change", args=[generated.pk]))
    response = client.post(reverse("admin:learning_weeklyreport_regenerate", args=[generated.pk]))

    assert page.status_code == 200
    assert 'id="regenerate-report-form"' not in page.content.decode()
    assert response.status_code == 403
    generated.refresh_from_db()
    assert generated.full_report == "An old text"


# --- pages people can read ------------------------------------------------------------------------


def test_the_learner_pages_have_no_raw_null_json_or_escaped_tags(admin_client):
    user = TelegramUserFactory(telegram_data={"first_name": "Ann", "language_code": "bg"})
    profile = BotProfileFactory(user=user, status=ProfileStatus.BLOCKED, reason=None)
    ExerciseAttemptFactory(
        user=user,
        exercise=ExerciseFactory(),
        is_correct=False,
        feedback="Almost: <b>едно</b> &amp; <i>две</i>.",
        error_tags={"grammar": ["articles", "cases"]},
    )
    report = WeeklyReportFactory(
        user=user, bot_id=profile.bot_id, full_report="<b>Your week</b>\nWell done &amp; more"
    )

    for url in (
        reverse("admin:learning_telegramuser_change", args=[user.pk]),
        reverse("admin:learning_botprofile_change", args=[profile.pk]),
        reverse("admin:learning_weeklyreport_change", args=[report.pk]),
    ):
        html = admin_client.get(url).content.decode()
        assert "null" not in html, url
        assert "&lt;" not in html, url
        assert "&amp;amp;" not in html, url
        assert '{"' not in html, url
        assert "{&quot;grammar" not in html, url

    html = admin_client.get(reverse("admin:learning_telegramuser_change", args=[user.pk]))
    html = html.content.decode()
    assert "<div>first_name: Ann</div><div>language_code: bg</div>" in html
    assert "Almost: едно &amp; две." in html  # the feedback as text: one entity, for the &
    assert "<div>grammar: articles, cases</div>" in html
    assert "No payments yet." in html
    assert "No notifications yet." in html


def test_a_learner_without_attempts_gets_an_empty_state(admin_client):
    profile = BotProfileFactory()

    user_html = admin_client.get(
        reverse("admin:learning_telegramuser_change", args=[profile.user_id])
    ).content.decode()
    profile_html = admin_client.get(
        reverse("admin:learning_botprofile_change", args=[profile.pk])
    ).content.decode()

    assert "No attempts yet." in user_html
    assert "<table" not in user_html.split('id="attempts-group"')[1].split("</fieldset>")[0]
    assert "No attempts yet in this bot." in profile_html
    assert BotProfile.objects.filter(pk=profile.pk).exists()


def test_staff_change_a_users_plan_through_the_service(admin_client, profile):
    url, page = user_page(admin_client, profile.user)
    data = submitted(page, "telegramuser_form", status="premium", status_source="staff")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(url, data)

    assert response.status_code == 302
    [update] = writes_to(queries, "learning_telegramuser")
    assert '"status"' in update
    assert '"custom_settings"' not in update
    user = TelegramUser.objects.get(pk=profile.user_id)
    assert (user.status, user.status_source) == ("premium", "staff")


# --- deleting: users and profiles through their services ----------------------------------------


def test_staff_delete_a_user_and_their_profiles(admin_client, profile):
    url = reverse("admin:learning_telegramuser_delete", args=[profile.user.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not TelegramUser.objects.filter(pk=profile.user.pk).exists()
    assert not BotProfile.objects.filter(pk=profile.pk).exists()


def test_a_user_with_payments_is_kept(admin_client, profile):
    from tests.payments.factories import PaymentFactory

    PaymentFactory(user=profile.user)
    url = reverse("admin:learning_telegramuser_delete", args=[profile.user.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 200  # the confirmation page names the protected payments
    assert "payment" in response.content.decode().lower()
    assert TelegramUser.objects.filter(pk=profile.user.pk).exists()


def test_staff_delete_a_profile_and_the_user_stays(admin_client, profile):
    url = reverse("admin:learning_botprofile_delete", args=[profile.pk])

    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not BotProfile.objects.filter(pk=profile.pk).exists()
    assert TelegramUser.objects.filter(pk=profile.user_id).exists()
