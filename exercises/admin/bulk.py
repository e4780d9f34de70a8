"""The queue's bulk decisions: each selected exercise the decision applies to goes through its
status service; the others are skipped and counted by reason ("already published")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from exercises.admin.service_save import moderator_of
from exercises.audio import audio_pipeline_ready
from exercises.models import Exercise
from exercises.moderation import STAFF_ACTIONS


class BulkDecisionsMixin(admin.ModelAdmin):
    decisions = ("publish", "archive", "send_to_review", "admin_review", "regenerate_audio")

    def _run(self, request: HttpRequest, queryset: QuerySet[Exercise], name: str) -> None:
        """Decide every selected exercise the decision applies to; say what was skipped and why."""
        action = STAFF_ACTIONS[name]
        unavailable = action.unavailable_reason()
        if unavailable is not None:
            self.message_user(
                request,
                gettext("%(action)s is not available: %(reason)s. Nothing was changed.")
                % {"action": action.label, "reason": unavailable},
                messages.ERROR,
            )
            return
        user = moderator_of(request)
        now = timezone.now()
        done = 0
        skipped: Counter[str] = Counter()
        selected = queryset.order_by("pk").values_list("pk", "status", "exercise_type")
        for exercise_id, status, exercise_type in selected:
            reason = action.skip_reason(status=status, exercise_type=exercise_type)
            if reason is not None:
                skipped[reason] += 1
                continue
            try:
                action.service(exercise_id=exercise_id, user=user, now=now)
            except ValidationError as error:
                self.message_user(
                    request, f"#{exercise_id}: {' '.join(error.messages)}", messages.ERROR
                )
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(action)s: %(count)d exercise.", "%(action)s: %(count)d exercises.", done
                )
                % {"action": action.label, "count": done},
                messages.SUCCESS,
            )
        for reason, count in sorted(skipped.items()):
            self.message_user(
                request,
                ngettext(
                    "Skipped %(count)d exercise that is %(reason)s.",
                    "Skipped %(count)d exercises that are %(reason)s.",
                    count,
                )
                % {"count": count, "reason": reason},
                messages.WARNING,
            )

    @admin.action(description=STAFF_ACTIONS["publish"].label, permissions=["change"])
    def publish(self, request: HttpRequest, queryset: QuerySet[Exercise]) -> None:
        self._run(request, queryset, "publish")

    @admin.action(description=STAFF_ACTIONS["archive"].label, permissions=["change"])
    def archive(self, request: HttpRequest, queryset: QuerySet[Exercise]) -> None:
        self._run(request, queryset, "archive")

    @admin.action(description=STAFF_ACTIONS["send_to_review"].label, permissions=["change"])
    def send_to_review(self, request: HttpRequest, queryset: QuerySet[Exercise]) -> None:
        self._run(request, queryset, "send_to_review")

    @admin.action(description=STAFF_ACTIONS["admin_review"].label, permissions=["change"])
    def admin_review(self, request: HttpRequest, queryset: QuerySet[Exercise]) -> None:
        self._run(request, queryset, "admin_review")

    @admin.action(description=STAFF_ACTIONS["regenerate_audio"].label, permissions=["change"])
    def regenerate_audio(self, request: HttpRequest, queryset: QuerySet[Exercise]) -> None:
        self._run(request, queryset, "regenerate_audio")
        self._warn_audio_off(
            request, queryset.values_list("exercise_language", flat=True).distinct()
        )

    def _warn_audio_off(self, request: HttpRequest, bot_ids: Iterable[str]) -> None:
        for bot_id in sorted(set(bot_ids)):
            reason = audio_pipeline_ready(bot_id)
            if reason:
                self.message_user(
                    request,
                    gettext(
                        "%(bot)s stories cannot be voiced now (%(reason)s); they wait in "
                        "audio_generation_error for the refill job's repair."
                    )
                    % {"bot": bot_id, "reason": reason},
                    messages.WARNING,
                )
