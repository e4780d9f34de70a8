"""The exercise moderation console: the review queue and the moderator's exercise page.

Another interface to the services: an edit goes through `exercises.staff_edit`, a decision
through `exercises.moderation`, an accepted answer through `exercises.staff_verdicts`; each is
recorded in the exercise's review history with the moderator's name. The page offers only the
decisions that apply to the exercise's status, and after one it opens the next exercise of the
queue the moderator came from (`QueueNavigator`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from duoniche.enums import ExerciseStatus
from exercises.admin.bulk import BulkDecisionsMixin
from exercises.admin.forms import MODEL_FIELDS, ExerciseEditForm, edit_fieldsets, edit_form_class
from exercises.admin.page import moderation_context, percent
from exercises.admin.queue import (
    AssessorSuggestionFilter,
    ErrorRateFilter,
    QueueFilter,
    QueueNavigator,
    UntouchedFilter,
)
from exercises.admin.service_save import ServiceSaveMixin, moderator_of
from exercises.models import Exercise
from exercises.moderation import STAFF_ACTIONS
from exercises.selectors import exercises_with_moderation_columns
from exercises.staff_edit import exercise_staff_edit
from exercises.staff_verdicts import exercise_add_accepted_answer

_NAVIGATOR = "_queue_navigator"
AUDIT_FIELDSET = (
    _("Generated and audit"),
    {
        "fields": (
            ("exercise_type", "exercise_language", "persona", "source"),
            ("status", "status_changed_at", "last_reviewed_at"),
            ("attempts_count", "created_at", "updated_at"),
            "content_hash",
            "comments",
        )
    },
)


@admin.register(Exercise)
class ExerciseAdmin(BulkDecisionsMixin, ServiceSaveMixin):
    form = ExerciseEditForm
    list_display = (
        "id",
        "preview",
        "exercise_language",
        "exercise_type",
        "language_level",
        "topic",
        "status",
        "error_rate_display",
        "suggestion_display",
        "attempts_count",
        "status_changed_at",
    )
    list_display_links = ("id", "preview")
    list_filter = (
        QueueFilter,
        "status",
        "exercise_language",
        "exercise_type",
        "language_level",
        "topic",
        "persona",
        "source",
        ErrorRateFilter,
        AssessorSuggestionFilter,
        UntouchedFilter,
    )
    search_fields = (
        "data__text_with_blanks",
        "data__words",
        "data__options",
        "data__content_text",
    )
    search_help_text = _("Text, words and options (an exercise number finds that exercise).")
    readonly_fields = (
        "exercise_type",
        "exercise_language",
        "status",
        "persona",
        "source",
        "attempts_count",
        "content_hash",
        "status_changed_at",
        "last_reviewed_at",
        "created_at",
        "updated_at",
        "comments",
    )
    actions = BulkDecisionsMixin.decisions

    def get_queryset(self, request: HttpRequest) -> QuerySet[Exercise]:
        return exercises_with_moderation_columns(
            super().get_queryset(request).defer("comments", "random_key")
        )

    def get_ordering(self, request: HttpRequest) -> list[str]:
        """Newest first (the latest status change: the newest in the queue)."""
        return ["-status_changed_at", "-pk"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Exercise], search_term: str
    ) -> tuple[QuerySet[Exercise], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        number = search_term.strip().lstrip("#")
        if number.isdigit():
            results |= queryset.filter(pk=int(number))
        return results, may_have_duplicates

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # content enters through generation or import_exercises

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # archive instead: attempts and verdicts stay

    # --- the queue ---

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if isinstance(response, TemplateResponse) and context and "cl" in context:
            context["queue_to_review"] = any(
                isinstance(spec, QueueFilter) and spec.value() == QueueFilter.TO_REVIEW
                for spec in context["cl"].filter_specs
            )
        return response

    @admin.display(description=_("exercise"))
    def preview(self, exercise: Exercise) -> str:
        data = exercise.data if isinstance(exercise.data, dict) else {}
        text = (
            data.get("text_with_blanks")
            or data.get("content_text")
            or " / ".join(str(option) for option in data.get("options") or [])
        )
        return Truncator(str(text)).chars(80)

    @admin.display(description=_("error rate"), ordering=F("error_rate").asc(nulls_first=True))
    def error_rate_display(self, exercise: Exercise) -> str:
        return percent(getattr(exercise, "error_rate", None))

    @admin.display(description=_("assessor"), ordering="assessor_action")
    def suggestion_display(self, exercise: Exercise) -> str:
        action = getattr(exercise, "assessor_action", None) or ""
        return f"{action} ✎" if getattr(exercise, "assessor_revision", None) else action

    # --- the edit form: one field per part, saved by the edit service ---

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None or not self.has_change_permission(request, obj):
            return [AUDIT_FIELDSET]
        return [*edit_fieldsets(obj), AUDIT_FIELDSET]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """The type's form; its content fields are its own, only level and topic are the model's."""
        kwargs["form"] = edit_form_class(obj)
        kwargs["fields"] = list(MODEL_FIELDS)
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Exercise, form: Any, change: bool) -> None:
        navigator = self._navigator(request, obj.pk)
        if "_continue" not in request.POST:
            navigator.remember_order()
        setattr(request, _NAVIGATOR, navigator)
        try:
            edit = exercise_staff_edit(
                exercise_id=obj.pk, user=moderator_of(request), now=timezone.now(), **form.content
            )
        except ValidationError as error:
            self.report_failure(request, error)
            return
        for warning in edit.warnings:
            self.message_user(request, warning, messages.WARNING)
        if edit.dropped_verdicts:
            self.message_user(
                request,
                ngettext(
                    "%(count)d stored verdict that no longer holds was deleted.",
                    "%(count)d stored verdicts that no longer hold were deleted.",
                    edit.dropped_verdicts,
                )
                % {"count": edit.dropped_verdicts},
                messages.INFO,
            )
        status = ExerciseStatus(edit.review.new_status).label.lower()
        self.message_user(
            request,
            gettext("Exercise #%(id)s saved; it is now %(status)s.")
            % {"id": obj.pk, "status": status},
            messages.SUCCESS,
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related is edited here (the verdicts have their own page)."""

    def response_change(self, request: HttpRequest, obj: Exercise) -> HttpResponse:
        """Saving goes on to the next exercise of the queue; "stay here" (`_continue`) stays."""
        if self.save_failed(request) or "_continue" in request.POST:
            return HttpResponseRedirect(request.get_full_path())
        return self._to_next(request, getattr(request, _NAVIGATOR))

    # --- the page ---

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Exercise | None = None,
    ) -> HttpResponse:
        if obj is not None:
            url = reverse("admin:exercises_exercise_moderate", args=[obj.pk])
            preserved = self.get_preserved_filters(request)
            context["moderation"] = moderation_context(
                exercise=obj,
                can_change=self.has_change_permission(request, obj),
                moderate_url=f"{url}?{preserved}" if preserved else url,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/moderate/",
                self.admin_site.admin_view(self.moderate_view),
                name="exercises_exercise_moderate",
            ),
            *super().get_urls(),
        ]

    def moderate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One decision from the exercise page, then the next exercise of the queue.

        Accepting an answer is not a decision on the exercise: the page stays.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        exercise = self.get_object(request, unquote(object_id))
        if exercise is None:
            raise Http404
        if not self.has_change_permission(request, exercise):
            raise PermissionDenied
        action = request.POST.get("action", "")
        if action != "accept_answer" and action not in STAFF_ACTIONS:
            return HttpResponseBadRequest("unknown action")
        user = moderator_of(request)
        now = timezone.now()
        navigator = self._navigator(request, exercise.pk)
        if action in STAFF_ACTIONS:
            navigator.remember_order()
        try:
            if action == "accept_answer":
                verdict = exercise_add_accepted_answer(
                    exercise_id=exercise.pk,
                    answer=request.POST.get("answer", ""),
                    user=user,
                    now=now,
                )
                message = gettext("%(answer)r is now accepted as correct.") % {
                    "answer": verdict.answer_text
                }
            else:
                review = STAFF_ACTIONS[action].service(exercise_id=exercise.pk, user=user, now=now)
                message = gettext("%(action)s: #%(id)s is now %(status)s.") % {
                    "action": STAFF_ACTIONS[action].label,
                    "id": exercise.pk,
                    "status": ExerciseStatus(review.new_status).label.lower(),
                }
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return HttpResponseRedirect(navigator.exercise_url(exercise.pk))
        self.message_user(request, message, messages.SUCCESS)
        if action == "regenerate_audio":
            self._warn_audio_off(request, [exercise.exercise_language])
        if action == "accept_answer":
            return HttpResponseRedirect(navigator.exercise_url(exercise.pk))
        return self._to_next(request, navigator)

    def _navigator(self, request: HttpRequest, exercise_id: int) -> QueueNavigator:
        return QueueNavigator(model_admin=self, request=request, current_id=exercise_id)

    def _to_next(self, request: HttpRequest, navigator: QueueNavigator) -> HttpResponse:
        next_id = navigator.next_id()
        if next_id is not None:
            return HttpResponseRedirect(navigator.exercise_url(next_id))
        self.message_user(request, gettext("The queue is empty."), messages.INFO)
        return HttpResponseRedirect(navigator.queue_url())
