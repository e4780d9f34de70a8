"""Notification relevance (docs/api.md): real checks instead of always true."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from duoniche.enums import NotificationType, ProfileStatus, ReportStatus
from learning.profiles import profile_block, profile_set_session_reminders
from learning.sessions import profile_next_action
from notifications.relevance import notification_is_relevant
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory, WeeklyReportFactory
from tests.notifications.factories import NotificationLogFactory

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}


def relevance(client, task_id, **query):
    response = client.get(f"/api/v1/notifications/{task_id}/relevance", query, **AUTH)
    return response


def is_relevant(client, log, **overrides):
    query = {"bot_id": log.bot_id, "user_id": log.user_id, **overrides}
    response = relevance(client, log.task_id, **query)
    assert response.status_code == 200
    return response.json()["is_relevant"]


def iso(moment):
    return moment.isoformat() if moment is not None else None


# --- producers' rows, as the scheduler writes them (docs/notifier.md) ---------------------------


def session_reminder(*, frozen_for=timedelta(minutes=-5), wants=True):
    """A profile whose cooldown ended `-frozen_for` ago and who opted in; its reminder row."""
    profile = BotProfileFactory(
        session_started_at=timezone.now() - timedelta(hours=4),
        session_frozen_until=timezone.now() + frozen_for,
        exercises_get_in_session=10,
    )
    profile_set_session_reminders(
        user_id=profile.user_id, bot_id=profile.bot_id, wants_reminders=wants
    )
    log = NotificationLogFactory(
        user=profile.user,
        bot_id=profile.bot_id,
        notification_type=NotificationType.SESSION_REMINDER,
        context={"session_frozen_until": iso(profile.session_frozen_until)},
    )
    return profile, log


def long_break_reminder():
    profile = BotProfileFactory(last_exercise_at=timezone.now() - timedelta(days=3, minutes=7))
    log = NotificationLogFactory(
        user=profile.user,
        bot_id=profile.bot_id,
        notification_type=NotificationType.LONG_BREAK_REMINDER,
        metadata={"reminder_type": "3d", "days_inactive": 3},
        context={"last_exercise_at": iso(profile.last_exercise_at)},
    )
    return profile, log


def report_notification(*, full, **report_fields):
    profile = BotProfileFactory()
    report = WeeklyReportFactory(user=profile.user, bot_id=profile.bot_id, **report_fields)
    log = NotificationLogFactory(
        user=profile.user,
        bot_id=profile.bot_id,
        notification_type=NotificationType.WEEKLY_REPORT,
        is_full_report=full,
        metadata={"report_id": report.pk, **({"is_full_report": True} if full else {})},
        context={"report_id": report.pk},
    )
    return report, log


def serve_an_exercise(profile):
    for _ in range(5):
        ExerciseFactory()
    result = profile_next_action(user_id=profile.user_id, bot_id=profile.bot_id, now=timezone.now())
    assert result.action == "new_exercise"


# --- the request ---------------------------------------------------------------------------------


def test_missing_query_parameters_are_the_422_list(client):
    response = relevance(client, uuid.uuid4())

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"loc": ["query", "bot_id"], "msg": "Field required", "type": "missing"},
            {"loc": ["query", "user_id"], "msg": "Field required", "type": "missing"},
        ],
        "code": "validation_error",
    }


@pytest.mark.parametrize(
    ("user_id", "error_type"), [("abc", "int_parsing"), ("1.5", "int_parsing")]
)
def test_a_bad_user_id_is_422(client, user_id, error_type):
    response = relevance(client, uuid.uuid4(), bot_id="Bulgarian", user_id=user_id)

    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["query", "user_id"], error_type)
    ]


def test_a_task_id_longer_than_64_characters_is_422(client):
    response = relevance(client, "x" * 65, bot_id="Bulgarian", user_id=1)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "task_id"]
    assert response.json()["detail"][0]["type"] == "string_too_long"


def test_the_service_token_is_required(client):
    response = client.get(f"/api/v1/notifications/{uuid.uuid4()}/relevance?bot_id=B&user_id=1")

    assert response.status_code == 401


# --- generic rows of the table -------------------------------------------------------------------


@pytest.mark.parametrize("task_id", [uuid.uuid4(), "not-a-uuid", "x" * 64])
def test_an_unknown_task_is_relevant(client, task_id, caplog):
    caplog.set_level("INFO", logger="notifications.relevance")

    response = relevance(client, task_id, bot_id="Bulgarian", user_id=1)

    assert response.status_code == 200
    assert response.json() == {"is_relevant": True}
    assert "unknown notification" in caplog.text


def test_the_task_id_works_with_both_slash_forms(client):
    _, log = long_break_reminder()

    response = client.get(
        f"/api/v1/notifications/{log.task_id}/relevance/",
        {"bot_id": log.bot_id, "user_id": log.user_id},
        **AUTH,
    )

    assert response.json() == {"is_relevant": True}


def test_another_user_or_bot_is_not_relevant(client):
    profile, log = long_break_reminder()
    other = BotProfileFactory(bot_id=profile.bot_id)
    BotProfileFactory(user=profile.user, bot_id="Serbian")

    assert is_relevant(client, log) is True
    assert is_relevant(client, log, user_id=other.user_id) is False
    assert is_relevant(client, log, bot_id="Serbian") is False


def test_a_blocked_profile_is_not_relevant(client):
    profile, log = long_break_reminder()

    profile_block(
        user_id=profile.user_id,
        bot_id=profile.bot_id,
        telegram_id=profile.user.telegram_id,
        reason="blocked",
    )

    assert is_relevant(client, log) is False


def test_an_inactive_profile_is_not_relevant(client):
    profile, log = long_break_reminder()
    type(profile).objects.filter(pk=profile.pk).update(status=ProfileStatus.INACTIVE)

    assert is_relevant(client, log) is False


def test_a_missing_profile_is_not_relevant(client):
    profile, log = long_break_reminder()
    profile.delete()

    assert is_relevant(client, log) is False


# --- session reminders ---------------------------------------------------------------------------


def test_an_unchanged_ended_freeze_with_reminders_wanted_is_relevant(client):
    _, log = session_reminder()

    assert is_relevant(client, log) is True


def test_a_session_reminder_after_a_new_session_is_not_relevant(client):
    profile, log = session_reminder()

    serve_an_exercise(profile)  # the freeze ended: a new session starts

    profile.refresh_from_db()
    assert profile.session_frozen_until is None
    assert is_relevant(client, log) is False


def test_a_session_reminder_after_a_new_freeze_is_not_relevant(client):
    profile, log = session_reminder()
    type(profile).objects.filter(pk=profile.pk).update(
        session_frozen_until=timezone.now() - timedelta(minutes=1), wants_session_reminders=True
    )

    assert is_relevant(client, log) is False


def test_a_session_reminder_before_the_freeze_ends_is_not_relevant(client):
    _, log = session_reminder(frozen_for=timedelta(minutes=5))

    assert is_relevant(client, log) is False


@pytest.mark.parametrize("wants", [False, None])
def test_a_session_reminder_not_wanted_is_not_relevant(client, wants):
    profile, log = session_reminder()
    profile_set_session_reminders(
        user_id=profile.user_id, bot_id=profile.bot_id, wants_reminders=wants
    )

    assert is_relevant(client, log) is False


def test_a_session_reminder_without_a_stored_freeze_is_not_relevant(client):
    _, log = session_reminder()
    type(log).objects.filter(pk=log.pk).update(context={"session_frozen_until": None})

    assert is_relevant(client, log) is False


def test_a_stored_freeze_in_z_notation_matches(client):
    profile, log = session_reminder()
    stored = profile.session_frozen_until.isoformat().replace("+00:00", "Z")
    type(log).objects.filter(pk=log.pk).update(context={"session_frozen_until": stored})

    assert is_relevant(client, log) is True


# --- long-break reminders ------------------------------------------------------------------------


def test_a_long_break_reminder_while_still_inactive_is_relevant(client):
    _, log = long_break_reminder()

    assert is_relevant(client, log) is True


def test_a_long_break_reminder_after_an_exercise_is_not_relevant(client):
    profile, log = long_break_reminder()

    serve_an_exercise(profile)

    assert is_relevant(client, log) is False


# --- weekly reports ------------------------------------------------------------------------------


def test_a_short_report_is_relevant_while_the_report_exists(client):
    report, log = report_notification(full=False)

    assert is_relevant(client, log) is True
    report.delete()
    assert is_relevant(client, log) is False


@pytest.mark.parametrize(
    ("status", "full_report", "expected"),
    [
        (ReportStatus.SENT, "<b>Your detailed weekly report</b>", True),
        (ReportStatus.GENERATED, "<b>Your detailed weekly report</b>", False),
        (ReportStatus.SENT, "", False),
        (ReportStatus.SENT, None, False),
        (ReportStatus.FAILED, None, False),
    ],
)
def test_a_full_report_needs_a_sent_report_with_text(client, status, full_report, expected):
    _, log = report_notification(full=True, status=status, full_report=full_report)

    assert is_relevant(client, log) is expected


def test_a_deleted_full_report_is_not_relevant(client):
    report, log = report_notification(full=True, status=ReportStatus.SENT, full_report="text")

    report.delete()

    assert is_relevant(client, log) is False


def test_a_report_row_without_a_stored_report_id_is_not_relevant(client):
    _, log = report_notification(full=False)
    type(log).objects.filter(pk=log.pk).update(context={})

    assert is_relevant(client, log) is False


# --- the selector --------------------------------------------------------------------------------


def test_the_check_costs_at_most_three_queries(django_assert_max_num_queries):
    _, log = report_notification(full=True, status=ReportStatus.SENT, full_report="text")

    with django_assert_max_num_queries(3):
        relevant = notification_is_relevant(
            task_id=str(log.task_id), user_id=log.user_id, bot_id=log.bot_id, now=timezone.now()
        )

    assert relevant is True
