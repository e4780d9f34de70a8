"""The learner pages of the admin: progress on the user and profile pages, and "reset session"."""

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from duoniche.api.errors import ApplicationError
from learning.admin_inlines import LATEST, session_state
from learning.models import BotProfile, LevelChange
from learning.profiles import profile_staff_reset_session
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory, ExerciseAttemptFactory, TelegramUserFactory
from tests.notifications.factories import NotificationLogFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def frozen(now):
    """A profile 17 exercises into a session, frozen for another hour, with reminder state."""
    return BotProfileFactory(
        user=TelegramUserFactory(username="ann"),
        exercises_get_in_session=17,
        exercises_get_in_set=2,
        errors_count_in_set=1,
        session_started_at=now - timedelta(hours=2),
        session_frozen_until=now + timedelta(hours=1),
        wants_session_reminders=True,
        last_long_break_reminder_type_sent="3d",
        last_long_break_reminder_sent_at=now - timedelta(days=1),
        last_exercise_at=now - timedelta(minutes=5),
        current_streak_days=4,
        language_level="B1",
    )


def assert_fresh_session(profile, now):
    profile.refresh_from_db()
    assert profile.exercises_get_in_session == 0
    assert profile.exercises_get_in_set == 0
    assert profile.errors_count_in_set == 0
    assert profile.session_frozen_until is None
    assert profile.wants_session_reminders is None
    assert profile.last_long_break_reminder_type_sent is None
    assert profile.last_long_break_reminder_sent_at is None
    assert profile.session_started_at >= now
    # Progress that is not session state is kept.
    assert profile.current_streak_days == 4
    assert profile.language_level == "B1"


# --- the service ----------------------------------------------------------------------------------


def test_staff_reset_starts_a_new_session(frozen, now):
    profile = profile_staff_reset_session(profile_id=frozen.pk, now=now)

    assert profile.pk == frozen.pk
    assert_fresh_session(frozen, now)
    assert frozen.session_started_at == now


def test_staff_reset_of_an_unknown_profile(db):
    with pytest.raises(ApplicationError) as error:
        profile_staff_reset_session(profile_id=987654, now=timezone.now())

    assert error.value.code == "profile_not_found"


def test_staff_reset_writes_only_the_session_fields(frozen, now):
    with CaptureQueriesContext(connection) as queries:
        profile_staff_reset_session(profile_id=frozen.pk, now=now)

    [select, update] = [q["sql"] for q in queries if "learning_botprofile" in q["sql"]]
    assert "FOR UPDATE" in select
    assert update.startswith('UPDATE "learning_botprofile" SET')
    assert "current_streak_days" not in update
    assert "language_level" not in update


# --- session state in words -----------------------------------------------------------------------


def test_session_state_in_words(now):
    profile = BotProfile(exercises_get_in_session=7, exercises_get_in_set=2)
    assert session_state(profile, now) == "no session yet"

    profile.session_started_at = now - timedelta(minutes=10)
    assert session_state(profile, now, limit=15) == "active: 7/15 served, 2/5 in this set"
    assert session_state(profile, now) == "active: 7 served, 2/5 in this set"

    profile.session_started_at = now - timedelta(hours=4)
    assert session_state(profile, now) == "expired: a new session starts on the next call"

    profile.session_frozen_until = now + timedelta(hours=1, minutes=30)
    assert session_state(profile, now) == "frozen for 1 hour 30 minutes more, after 7 exercises"

    profile.session_frozen_until = now - timedelta(seconds=1)
    assert session_state(profile, now) == "freeze over: a new session starts on the next call"


# --- the pages ------------------------------------------------------------------------------------


@pytest.fixture
def learner(frozen, now):
    """`frozen`'s user with 25 attempts (the newest wrong), a payment and a notification."""
    user = frozen.user
    exercise = ExerciseFactory()
    serbian = ExerciseFactory(
        exercise_language="Serbian",
        data={"text_with_blanks": "Hoću ___ kafu.", "words": ["jednu", "jedan"]},
    )
    for minutes in range(25, 0, -1):
        ExerciseAttemptFactory(
            user=user,
            exercise=exercise,
            is_correct=minutes != 1,
            feedback="" if minutes != 1 else "Not quite: <b>едно</b>.",
            created_at=now - timedelta(minutes=minutes),
        )
    ExerciseAttemptFactory(user=user, exercise=serbian, created_at=now - timedelta(days=2))
    PaymentFactory(user=user, amount=200, telegram_payment_charge_id="charge-ann")
    NotificationLogFactory(user=user, status="failed", error="Forbidden: bot was blocked")
    return user


def test_user_page_shows_progress_and_the_latest_attempts(admin_client, learner, frozen):
    response = admin_client.get(reverse("admin:learning_telegramuser_change", args=[learner.pk]))

    assert response.status_code == 200
    inlines = {f.formset.prefix: f.formset for f in response.context["inline_admin_formsets"]}
    assert set(inlines) == {"profiles", "attempts", "payments", "notifications"}
    attempts = [form.instance for form in inlines["attempts"].forms]
    assert len(attempts) == LATEST
    newest = learner.attempts.order_by("-created_at")[:LATEST]
    assert [a.pk for a in attempts] == [a.pk for a in newest]
    assert attempts[0].is_correct is False
    assert [p.telegram_payment_charge_id for p in inlines["payments"].queryset] == ["charge-ann"]
    html = response.content.decode()
    assert "frozen for 1 hour more" in html  # the profile's session state
    assert "Forbidden: bot was blocked" in html
    assert "26 attempts</a>, 96% correct" in html  # 25 of 26
    assert "latest 20 attempts" in html.lower()


def test_user_page_queries_do_not_grow_with_the_rows(
    admin_client, learner, django_assert_max_num_queries
):
    url = reverse("admin:learning_telegramuser_change", args=[learner.pk])

    with django_assert_max_num_queries(25):
        assert admin_client.get(url).status_code == 200


def test_inlines_are_read_only(admin_client, learner):
    response = admin_client.get(reverse("admin:learning_telegramuser_change", args=[learner.pk]))

    inlines = {f.formset.prefix: f for f in response.context["inline_admin_formsets"]}
    for prefix in ("attempts", "payments", "notifications"):
        inline = inlines[prefix]
        assert not inline.has_add_permission, prefix
        assert not inline.has_change_permission, prefix
        assert not inline.has_delete_permission, prefix
    assert not inlines["profiles"].has_add_permission  # profiles come from the bot


def test_profile_page_shows_session_state_and_attempts_in_this_bot(admin_client, learner, frozen):
    response = admin_client.get(reverse("admin:learning_botprofile_change", args=[frozen.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "frozen for 1 hour more" in html
    assert html.count("<td>wrong</td>") == 1
    assert html.count("<td>correct</td>") == LATEST - 1  # the Serbian attempt is not listed
    # Feedback as the learner reads it: no tags, and no escaped tags shown as text either.
    assert "Not quite: едно." in html
    assert "&lt;b&gt;" not in html
    assert 'id="reset-session-form"' in html
    assert "exercise__exercise_language__exact=Bulgarian" in html


def test_profile_page_shows_the_effective_session_limit(admin_client, now):
    profile = BotProfileFactory(
        exercises_get_in_session=3, session_started_at=now - timedelta(minutes=5)
    )

    response = admin_client.get(reverse("admin:learning_botprofile_change", args=[profile.pk]))

    assert "active: 3/15 served" in response.content.decode()


def test_profile_list_shows_session_state(admin_client, frozen):
    response = admin_client.get(reverse("admin:learning_botprofile_changelist"))

    assert response.status_code == 200
    assert "frozen for 1 hour more" in response.content.decode()


# --- reset session --------------------------------------------------------------------------------


def test_reset_session_action(admin_client, frozen, now):
    other = BotProfileFactory(exercises_get_in_session=5)

    response = admin_client.post(
        reverse("admin:learning_botprofile_changelist"),
        {"action": "reset_session", "_selected_action": [frozen.pk, other.pk], "index": "0"},
        follow=True,
    )

    assert response.status_code == 200
    messages = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert messages == [("success", "New session started for 2 profiles.")]
    assert_fresh_session(frozen, now)
    other.refresh_from_db()
    assert other.exercises_get_in_session == 0


def test_reset_session_button_on_the_profile_page(admin_client, frozen, now):
    url = reverse("admin:learning_botprofile_reset_session", args=[frozen.pk])

    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:learning_botprofile_change", args=[frozen.pk])
    assert_fresh_session(frozen, now)
    page = admin_client.get(response["Location"])
    assert [m.message for m in page.context["messages"]] == [f"New session started for {frozen}."]
    history = admin_client.get(
        reverse("admin:learning_botprofile_history", args=[frozen.pk])
    ).content.decode()
    assert "Reset session" in history


def test_reset_session_needs_the_change_permission(client, frozen):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_botprofile"))
    client.force_login(viewer)

    page = client.get(reverse("admin:learning_botprofile_change", args=[frozen.pk]))
    button = client.post(reverse("admin:learning_botprofile_reset_session", args=[frozen.pk]))
    listing = client.get(reverse("admin:learning_botprofile_changelist"))

    assert page.status_code == 200
    assert 'id="reset-session-form"' not in page.content.decode()
    assert button.status_code == 403
    assert "reset_session" not in listing.content.decode()
    frozen.refresh_from_db()
    assert frozen.exercises_get_in_session == 17


def test_reset_session_of_an_unknown_profile_is_404(admin_client):
    url = reverse("admin:learning_botprofile_reset_session", args=[987654])

    assert admin_client.post(url).status_code == 404


# --- saving the pages writes only what staff changed ----------------------------------------------


class FormValues(HTMLParser):
    """The values a browser would submit for the page's main form."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            if a.get("type") in ("submit", "button"):
                return
            self.values.append((a["name"], a.get("value") or ""))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.values.append((self._select, a.get("value") or ""))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data):
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.values.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def submitted(page, form_id, **changes):
    parser = FormValues(form_id)
    parser.feed(page.content.decode())
    data = {}
    for name, value in parser.values:
        data.setdefault(name, value)
    data.update(changes)
    return data


def test_saving_the_user_page_writes_only_the_changed_profile_fields(admin_client, learner, frozen):
    url = reverse("admin:learning_telegramuser_change", args=[learner.pk])
    data = submitted(
        admin_client.get(url), "telegramuser_form", **{"profiles-0-language_level": "C1"}
    )

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "learning_botprofile"')]
    assert len(updates) == 1
    assert '"language_level"' in updates[0]
    assert "exercises_get_in_session" not in updates[0]
    assert not [q for q in queries if q["sql"].startswith('UPDATE "learning_telegramuser"')]
    frozen.refresh_from_db()
    assert (frozen.language_level, frozen.exercises_get_in_session) == ("C1", 17)


def test_saving_the_profile_page_writes_only_the_changed_fields(admin_client, frozen):
    url = reverse("admin:learning_botprofile_change", args=[frozen.pk])
    data = submitted(admin_client.get(url), "botprofile_form", language_level="A1")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(url, data)

    assert response.status_code == 302
    [update] = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "learning_botprofile"')]
    assert '"language_level"' in update
    assert "session_frozen_until" not in update
    frozen.refresh_from_db()
    assert frozen.language_level == "A1"


def test_a_level_set_in_the_admin_is_a_staff_change_shown_on_the_page(admin_client, frozen):
    url = reverse("admin:learning_botprofile_change", args=[frozen.pk])
    before = frozen.language_level

    response = admin_client.post(
        url, submitted(admin_client.get(url), "botprofile_form", language_level="C1")
    )

    assert response.status_code == 302
    change = LevelChange.objects.get(profile=frozen)
    assert (change.from_level, change.to_level, change.source) == (before, "C1", "staff")
    assert change.reason == f"set by {response.wsgi_request.user.get_username()}"
    frozen.refresh_from_db()
    assert frozen.level_changed_at == change.created_at
    page = admin_client.get(url).content.decode()
    assert f"{before} → C1, Staff (set by " in page
