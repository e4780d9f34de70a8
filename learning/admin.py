"""Admin for learners: users, bot profiles, attempts and weekly reports.

The user page shows the learner's progress (per-bot session state, streak, level), the latest
attempts with their verdicts, and the payments and notifications sent; the profile page shows the
same for one bot and offers "reset session", which calls
`profile_staff_reset_session` like any other interface would.

Payments and notifications depend on learning, not the reverse (STYLE: dependencies point one
way), so their inlines name the models (`apps.get_model`) instead of importing them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from duoniche.admin import ReadOnlyAdmin
from duoniche.api.errors import ApplicationError
from duoniche.language_tags import is_language_tag, normalise_language_code
from duoniche.languages import get_language
from duoniche.texts import format_pause_time
from learning.effective_settings import effective_settings
from learning.models import BotProfile, ExerciseAttempt, TelegramUser, WeeklyReport
from learning.profiles import profile_staff_reset_session

#: How many of the latest attempts and notifications the pages show (the lists link to the rest).
LATEST = 20


def session_state(profile: BotProfile, now: datetime, *, limit: int | None = None) -> str:
    """The derived session state in words, as the next call would see it."""
    served = profile.exercises_get_in_session
    if profile.session_frozen_until is not None:
        if now < profile.session_frozen_until:
            left = format_pause_time(profile.session_frozen_until - now, language="en")
            return f"frozen for {left} more, after {served} exercises"
        return "freeze over: a new session starts on the next call"
    if profile.session_started_at is None:
        return "no session yet"
    if now - profile.session_started_at > settings.MAX_SESSIONS_LENGTH:
        return "expired: a new session starts on the next call"
    of_limit = f"/{limit}" if limit is not None else ""
    return (
        f"active: {served}{of_limit} served, "
        f"{profile.exercises_get_in_set}/{settings.EXERCISES_IN_SET} in this set"
    )


def _changelist(model: str, **params: Any) -> str:
    return reverse(f"admin:{model}_changelist") + "?" + urlencode(params)


class LatestFormSet(BaseInlineFormSet):
    """An inline formset of the latest `LATEST` rows only (the inline's ordering decides which)."""

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset()
        if not queryset.query.is_sliced:
            queryset = queryset[:LATEST]
            self._queryset = queryset
        return queryset


class ReadOnlyInline(admin.TabularInline):
    """Rows the system writes: shown on the parent's page, never edited there."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BotProfileForm(forms.ModelForm):
    """The profile form: `user_language` is stored like the API stores it (normalised)."""

    class Meta:
        model = BotProfile
        fields = ("user_language",)  # the admin passes its own field list

    def clean_user_language(self) -> str:
        code = self.cleaned_data["user_language"]
        if not is_language_tag(code):
            raise forms.ValidationError(
                "Not a language tag: give a code such as en, ru or pt-BR.", code="invalid"
            )
        return normalise_language_code(code)


class BotProfileInline(admin.StackedInline):
    model = BotProfile
    form = BotProfileForm
    extra = 0
    fields = (
        "bot_id",
        "user_language",
        "language_level",
        "status",
        "reason",
        "settings",
        "session",
        "current_streak_days",
        "last_exercise_at",
    )
    readonly_fields = ("bot_id", "session", "current_streak_days", "last_exercise_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # profiles are created by the bot's first call

    @admin.display(description="session")
    def session(self, profile: BotProfile) -> str:
        return session_state(profile, timezone.now())


class AttemptInline(ReadOnlyInline):
    model = ExerciseAttempt
    formset = LatestFormSet
    verbose_name = "attempt"
    verbose_name_plural = f"latest {LATEST} attempts"
    fields = ("created_at", "exercise", "answer_text", "is_correct", "feedback", "error_tags")
    ordering = ("-created_at", "-id")
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExerciseAttempt]:
        return super().get_queryset(request).select_related("exercise")


class PaymentInline(ReadOnlyInline):
    model = apps.get_model("payments", "Payment")
    fields = (
        "processed_at",
        "bot_id",
        "source",
        "amount",
        "currency",
        "status",
        "refunded_at",
        "refund_error",
    )
    ordering = ("-processed_at", "-id")
    show_change_link = True


class NotificationInline(ReadOnlyInline):
    model = apps.get_model("notifications", "NotificationLog")
    formset = LatestFormSet
    verbose_name_plural = f"latest {LATEST} notifications"
    fields = (
        "created_at",
        "bot_id",
        "notification_type",
        "is_full_report",
        "status",
        "attempts",
        "error",
        "enqueued_at",
    )
    ordering = ("-created_at", "-id")
    show_change_link = True


@admin.register(TelegramUser)
class TelegramUserAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "telegram_id",
        "username",
        "name",
        "status",
        "status_expires_at",
        "cohort",
        "created_at",
    )
    list_filter = ("status", "cohort", "plan")
    search_fields = ("telegram_id", "username", "name")
    readonly_fields = ("telegram_id", "telegram_data", "progress", "created_at", "updated_at")
    inlines = (BotProfileInline, AttemptInline, PaymentInline, NotificationInline)
    date_hierarchy = "created_at"

    @admin.display(description="progress")
    def progress(self, user: TelegramUser) -> SafeString | str:
        if user.pk is None:
            return "-"
        totals = ExerciseAttempt.objects.filter(user=user).aggregate(
            total=Count("id"), correct=Count("id", filter=Q(is_correct=True))
        )
        total, correct = totals["total"], totals["correct"]
        accuracy = f"{100 * correct / total:.0f}% correct" if total else "no attempts yet"
        return format_html(
            '<a href="{}">{} attempts</a>, {} · <a href="{}">payments</a> · '
            '<a href="{}">notifications</a>',
            _changelist("learning_exerciseattempt", user__id__exact=user.pk),
            total,
            accuracy,
            _changelist("payments_payment", user__id__exact=user.pk),
            _changelist("notifications_notificationlog", user__id__exact=user.pk),
        )

    def save_model(self, request: HttpRequest, obj: TelegramUser, form: Any, change: bool) -> None:
        _save_changed(obj, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not BotProfile:
            super().save_formset(request, form, formset, change)
            return
        # Only the fields staff changed: the session counters move under the bot's requests.
        formset.save(commit=False)  # collects changed_objects (and the change message's lists)
        for profile, changed in formset.changed_objects:
            profile.save(update_fields=[*changed, "updated_at"])


def _save_changed(obj: Any, form: Any, change: bool) -> None:
    """Save what the form changed, not a full copy of a row that jobs and the bot also write."""
    if not change:
        obj.save()
    elif form.has_changed():
        obj.save(update_fields=[*form.changed_data, "updated_at"])


@admin.register(BotProfile)
class BotProfileAdmin(admin.ModelAdmin):
    form = BotProfileForm
    list_display = (
        "id",
        "user",
        "bot_id",
        "user_language",
        "language_level",
        "status",
        "session",
        "current_streak_days",
        "last_exercise_at",
        "session_frozen_until",
    )
    list_filter = ("bot_id", "status", "language_level", "user_language")
    search_fields = ("user__telegram_id", "user__username", "user__name")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    actions = ("reset_session",)
    change_form_template = "admin/learning/botprofile/change_form.html"
    fieldsets = (
        (None, {"fields": ("user", "bot_id", "user_language", "language_level", "status")}),
        ("Staff", {"fields": ("reason", "settings")}),
        (
            "Progress",
            {
                "fields": (
                    "session_with_limit",
                    "current_streak_days",
                    "exercises_get_in_session",
                    "exercises_get_in_set",
                    "errors_count_in_set",
                    "session_started_at",
                    "session_frozen_until",
                    "last_exercise_at",
                    "rating",
                    "rating_last_calculated_at",
                )
            },
        ),
        ("Latest attempts in this bot", {"fields": ("recent_attempts",)}),
        (
            "Reminders and reports",
            {
                "classes": ("collapse",),
                "fields": (
                    "wants_session_reminders",
                    "last_long_break_reminder_type_sent",
                    "last_long_break_reminder_sent_at",
                    "last_report_generated_at",
                    "created_at",
                    "updated_at",
                ),
            },
        ),
    )
    readonly_fields = (
        "user",
        "bot_id",
        "session_with_limit",
        "recent_attempts",
        "exercises_get_in_session",
        "exercises_get_in_set",
        "errors_count_in_set",
        "last_exercise_at",
        "session_started_at",
        "session_frozen_until",
        "current_streak_days",
        "wants_session_reminders",
        "last_long_break_reminder_type_sent",
        "last_long_break_reminder_sent_at",
        "last_report_generated_at",
        "rating",
        "rating_last_calculated_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description="session")
    def session(self, profile: BotProfile) -> str:
        return session_state(profile, timezone.now())

    @admin.display(description="session")
    def session_with_limit(self, profile: BotProfile) -> str:
        """On the change page (one profile): with the effective limit of this learner."""
        language = get_language(profile.bot_id)
        limit = None
        if language is not None:
            learning = effective_settings(
                user=profile.user, profile=profile, language=language, now=timezone.now()
            )
            limit = learning.session_exercise_limit
        return session_state(profile, timezone.now(), limit=limit)

    @admin.display(description="latest attempts")
    def recent_attempts(self, profile: BotProfile) -> SafeString | str:
        if profile.pk is None:
            return "-"
        attempts = list(
            ExerciseAttempt.objects.filter(
                user_id=profile.user_id, exercise__exercise_language=profile.bot_id
            )
            .select_related("exercise")
            .order_by("-created_at", "-id")[:LATEST]
        )
        if not attempts:
            return "no attempts in this bot yet"
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    timezone.localtime(attempt.created_at).strftime("%Y-%m-%d %H:%M"),
                    reverse("admin:exercises_exercise_change", args=[attempt.exercise_id]),
                    attempt.exercise,
                    attempt.answer_text,
                    "correct" if attempt.is_correct else "wrong",
                    _short(attempt.feedback),
                )
                for attempt in attempts
            ),
        )
        return format_html(
            "<table><thead><tr><th>when</th><th>exercise</th><th>answer</th><th>verdict</th>"
            "<th>feedback</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">all attempts of this user</a></p>',
            rows,
            _changelist(
                "learning_exerciseattempt",
                user__id__exact=profile.user_id,
                exercise__exercise_language__exact=profile.bot_id,
            ),
        )

    def save_model(self, request: HttpRequest, obj: BotProfile, form: Any, change: bool) -> None:
        _save_changed(obj, form, change)

    # --- reset session: an action on the list and a button on the page -----------------------

    @admin.action(description="Reset session (start a new one now)", permissions=["change"])
    def reset_session(self, request: HttpRequest, queryset: QuerySet[BotProfile]) -> None:
        now = timezone.now()
        done = []
        for profile_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                profile_staff_reset_session(profile_id=profile_id, now=now)
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                done.append(profile_id)
        if done:
            self.message_user(
                request,
                f"New session started for {len(done)} profile{'s' if len(done) != 1 else ''}.",
                messages.SUCCESS,
            )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/reset-session/",
                self.admin_site.admin_view(self.reset_session_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_reset_session",
            ),
            *super().get_urls(),
        ]

    def reset_session_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        profile = get_object_or_404(BotProfile, pk=object_id)
        if not self.has_change_permission(request, profile):
            return HttpResponse(status=403)
        profile_staff_reset_session(profile_id=profile.pk, now=timezone.now())
        self.message_user(request, f"New session started for {profile}.", messages.SUCCESS)
        self.log_change(request, profile, "Reset session")
        return HttpResponseRedirect(reverse("admin:learning_botprofile_change", args=[profile.pk]))


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@admin.register(ExerciseAttempt)
class ExerciseAttemptAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "exercise", "answer_text", "is_correct", "created_at")
    list_filter = ("is_correct", "exercise__exercise_language", "exercise__exercise_type")
    search_fields = ("user__telegram_id", "answer_text")
    list_select_related = ("user", "exercise")
    date_hierarchy = "created_at"


@admin.register(WeeklyReport)
class WeeklyReportAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user",
        "bot_id",
        "week_start_date",
        "status",
        "generation_attempts",
        "short_notified_at",
        "full_generated_at",
        "full_sent_at",
    )
    list_filter = ("status", "bot_id", "week_start_date")
    search_fields = ("user__telegram_id", "user__username")
    list_select_related = ("user",)
