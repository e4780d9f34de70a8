"""Admin for learners: users, bot profiles, attempts and weekly reports.

The user page shows the learner's progress (per-bot session state, streak, level), the latest
attempts with their verdicts, and the payments and notifications sent; the profile page shows the
same for one bot and offers "reset session" and, for a blocked profile, "unblock". Every save and
action calls the services (`learning.users`, `learning.profiles`) like any other interface
would; settings are checked with the API's rules (`learning.admin_forms`). The inlines are in
`learning.admin_inlines`, the attempt and weekly-report pages in `learning.report_admin`.

Payments and notifications depend on learning, not the reverse (STYLE: dependencies point one
way), so their admin modules add their own inlines to `TelegramUserAdmin.inlines`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy, ngettext

from duoniche.api.errors import ApplicationError
from duoniche.enums import ProfileStatus
from duoniche.languages import get_language
from learning.admin_forms import (
    BotProfileForm,
    TelegramUserForm,
    changed_values,
    plain_text,
    readable_lines,
    warn_unknown_settings,
)
from learning.admin_inlines import (
    LATEST,
    AttemptInline,
    BotProfileInline,
    session_state,
)
from learning.effective_settings import effective_settings
from learning.models import BotProfile, ExerciseAttempt, TelegramUser
from learning.profiles import (
    profile_staff_reset_session,
    profile_staff_update,
    profile_unblock,
    profiles_delete,
)
from learning.report_admin import WeeklyReportAdmin  # noqa: F401 (registers the report pages)
from learning.users import user_staff_update, users_delete

#: Level changes listed on a profile's page, newest first.
LEVEL_HISTORY_SHOWN = 10


def _changelist(model: str, **params: Any) -> str:
    return reverse(f"admin:{model}_changelist") + "?" + urlencode(params)


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
    form = TelegramUserForm
    fields = (
        "telegram_id",
        "username",
        "name",
        "telegram_details",
        "cohort",
        "plan",
        "status",
        "status_expires_at",
        "status_source",
        "custom_settings",
        "progress",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("telegram_id", "telegram_details", "progress", "created_at", "updated_at")
    #: Payments and notifications add their tables from their own admin modules.
    inlines: ClassVar[tuple[type[InlineModelAdmin[Any, Any]], ...]] = (
        BotProfileInline,
        AttemptInline,
    )
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users are created by the bot's first call

    def delete_model(self, request: HttpRequest, obj: TelegramUser) -> None:
        users_delete(user_ids=[obj.pk])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TelegramUser]) -> None:
        users_delete(user_ids=list(queryset.values_list("pk", flat=True)))

    @admin.display(description=gettext_lazy("Telegram data"))
    def telegram_details(self, user: TelegramUser) -> SafeString | str:
        return readable_lines(user.telegram_data)

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
        """Only what staff changed, through the user service (the bot writes the row too)."""
        changes = changed_values(form)
        if changes:
            user_staff_update(user_id=obj.pk, changes=changes)
        warn_unknown_settings(request, form, str(obj))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not BotProfile:
            super().save_formset(request, form, formset, change)
            return
        # Only the fields staff changed: the session counters move under the bot's requests.
        formset.save(commit=False)  # collects changed_objects (and the change message's lists)
        for profile, changed in formset.changed_objects:
            profile_staff_update(
                profile_id=profile.pk,
                changes={name: getattr(profile, name) for name in changed},
                staff_name=request.user.get_username(),
            )
        for profile_form in formset.forms:
            warn_unknown_settings(request, profile_form, str(profile_form.instance))


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
    actions = ("reset_session", "unblock")
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
                    "streak_freezes",
                    "level_history",
                    "exercises_get_in_session",
                    "exercises_get_in_set",
                    "errors_count_in_set",
                    "reviews_get_in_set",
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
        "streak_freezes",
        "level_history",
        "reviews_get_in_set",
        "wants_session_reminders",
        "last_long_break_reminder_type_sent",
        "last_long_break_reminder_sent_at",
        "last_report_generated_at",
        "rating",
        "rating_last_calculated_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description="level changes")
    def level_history(self, profile: BotProfile) -> SafeString:
        changes = list(profile.level_changes.all()[:LEVEL_HISTORY_SHOWN])
        if not changes:
            return format_html("{}", "none yet: the level is the one the profile started with")
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{}: {} → {}, {} ({})</li>",
                (
                    (
                        f"{change.created_at:%Y-%m-%d %H:%M}",
                        change.from_level,
                        change.to_level,
                        change.get_source_display(),
                        change.reason,
                    )
                    for change in changes
                ),
            ),
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
            return gettext("No attempts yet in this bot.")
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
                    _short(plain_text(attempt.feedback)),
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # profiles are created by the bot's first call

    def delete_model(self, request: HttpRequest, obj: BotProfile) -> None:
        profiles_delete(profile_ids=[obj.pk])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[BotProfile]) -> None:
        profiles_delete(profile_ids=list(queryset.values_list("pk", flat=True)))

    def save_model(self, request: HttpRequest, obj: BotProfile, form: Any, change: bool) -> None:
        """Only what staff changed, through the profile service (the bot writes the row too)."""
        changes = changed_values(form)
        if changes:
            profile_staff_update(
                profile_id=obj.pk, changes=changes, staff_name=request.user.get_username()
            )
        warn_unknown_settings(request, form, str(obj))

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

    # --- unblock: an action on the list and a button on the page of a blocked profile -------

    @admin.action(description=gettext_lazy("Unblock (active again)"), permissions=["change"])
    def unblock(self, request: HttpRequest, queryset: QuerySet[BotProfile]) -> None:
        unblocked = skipped = 0
        for profile_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                changed = profile_unblock(profile_id=profile_id)
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            unblocked += changed
            skipped += not changed
        if unblocked:
            self.message_user(
                request,
                ngettext(
                    "%(count)d profile unblocked: it gets notifications again.",
                    "%(count)d profiles unblocked: they get notifications again.",
                    unblocked,
                )
                % {"count": unblocked},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d profile was not blocked and was left as it was.",
                    "%(count)d profiles were not blocked and were left as they were.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    def unblock_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        profile = get_object_or_404(BotProfile, pk=object_id)
        if not self.has_change_permission(request, profile):
            return HttpResponse(status=403)
        if profile_unblock(profile_id=profile.pk):
            self.message_user(
                request,
                gettext("%(profile)s unblocked: it gets notifications again.")
                % {"profile": profile},
                messages.SUCCESS,
            )
            self.log_change(request, profile, gettext("Unblocked"))
        else:
            self.message_user(
                request,
                gettext("%(profile)s was not blocked; nothing changed.") % {"profile": profile},
                messages.WARNING,
            )
        return HttpResponseRedirect(reverse("admin:learning_botprofile_change", args=[profile.pk]))

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["is_blocked"] = obj is not None and obj.status == ProfileStatus.BLOCKED
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/reset-session/",
                self.admin_site.admin_view(self.reset_session_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_reset_session",
            ),
            path(
                "<path:object_id>/unblock/",
                self.admin_site.admin_view(self.unblock_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_unblock",
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
