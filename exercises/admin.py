"""The exercise moderation console: the review queue, the moderator's exercise page, verdicts.

Another interface to the services: every change goes through `exercises.moderation` (edits,
accepted answers, verdict fixes, status decisions), which records it in the exercise's review
history with the moderator's name. `ValidationError`s come back to the moderator as messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q, QuerySet
from django.forms.fields import InvalidJSONInput
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from duoniche.enums import ExerciseStatus, ExerciseType
from duoniche.telegram_html import clean_telegram_html
from duoniche.texts import render
from exercises.audio import audio_pipeline_ready
from exercises.content import BLANK
from exercises.models import Exercise, ExerciseAnswer, ExerciseReview
from exercises.moderation import (
    AUDIO_KEYS,
    STAFF_ACTIONS,
    answer_among_options,
    exercise_add_accepted_answer,
    exercise_staff_edit,
    exercise_staff_edit_check,
    verdict_staff_delete,
    verdict_staff_edit,
)
from exercises.selectors import (
    AnswerRow,
    attempts_weighted_error_rate,
    exercise_answer_rows,
    exercises_with_moderation_columns,
)

#: What the queue shows by default: the exercises waiting for a decision.
QUEUE_STATUSES = (ExerciseStatus.PENDING_ADMIN_REVIEW, ExerciseStatus.PENDING_REVIEW)
#: Suggested actions of the review assessor, matched by substring as in the
#: review processor's decision table.
ASSESSOR_ACTIONS = (
    "PUBLISH_OK",
    "KEEP_AS_IS_COMPLEX",
    "ARCHIVE",
    "REVISE_TEXT",
    "REVISE_CORRECT_ANSWER",
    "ADD_CORRECT_ANSWER_AND_ADMIN_REVIEW",
    "REVISE_FEEDBACK",
    "PENDING_ADMIN_REVIEW",
)
_FAILED = "_moderation_failed"


def _moderator(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    if not isinstance(user, AbstractBaseUser):  # the admin only lets signed-in staff through
        raise PermissionDenied
    return user


class ServiceSaveMixin(admin.ModelAdmin):
    """`save_model` calls a service; a `ValidationError` it raises becomes an error message.

    The failed save is then neither logged nor announced as a success: the moderator is sent
    back to the object's page.
    """

    def report_failure(self, request: HttpRequest, error: ValidationError) -> None:
        setattr(request, _FAILED, True)
        self.message_user(request, " ".join(error.messages), messages.ERROR)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, _FAILED, False):
            return None
        return super().log_change(request, obj, message)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        if getattr(request, _FAILED, False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)


# --- The queue ----------------------------------------------------------------------------------


class QueueFilter(admin.SimpleListFilter):
    """Opens on the exercises to review; "All" shows the whole bank."""

    title = "queue"
    parameter_name = "queue"
    TO_REVIEW = "review"
    ALL = "all"

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any
    ) -> None:
        # A status filter or a search looks at the whole bank unless the queue was chosen.
        self.whole_bank = bool(request.GET.get("q")) or any(
            key.startswith("status") for key in params
        )
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(self.TO_REVIEW, "To review"), (self.ALL, "All")]

    def value(self) -> str:
        value = super().value()
        if value in (self.TO_REVIEW, self.ALL):
            return str(value)
        return self.ALL if self.whole_bank else self.TO_REVIEW

    def choices(self, changelist: Any) -> Iterator[Any]:
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == self.TO_REVIEW:
            return queryset.filter(status__in=QUEUE_STATUSES)
        return queryset


class ErrorRateFilter(admin.SimpleListFilter):
    """Bands of the rating-weighted error rate since the last review."""

    title = "error rate"
    parameter_name = "error_rate"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        threshold = settings.QUALITY_ERROR_RATE_THRESHOLD
        return [
            ("none", "No attempts since the review"),
            ("low", "Below 25%"),
            ("mid", f"25% to {threshold:.0%}"),
            ("high", f"Above {threshold:.0%}"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        threshold = settings.QUALITY_ERROR_RATE_THRESHOLD
        bands = {
            "none": Q(error_rate__isnull=True),
            "low": Q(error_rate__lt=0.25),
            "mid": Q(error_rate__gte=0.25, error_rate__lte=threshold),
            "high": Q(error_rate__gt=threshold),
        }
        value = self.value()
        return queryset.filter(bands[value]) if value in bands else queryset


class AssessorSuggestionFilter(admin.SimpleListFilter):
    """The suggestion of the latest review that carries one (the review processor's assessor)."""

    title = "assessor suggestion"
    parameter_name = "suggestion"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            *((action, action) for action in ASSESSOR_ACTIONS),
            ("revision", "Any, with a suggested revision"),
            ("none", "No suggestion"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "none":
            return queryset.filter(assessor_action__isnull=True)
        if value == "revision":
            return queryset.exclude(assessor_revision__isnull=True).exclude(assessor_revision="")
        if value in ASSESSOR_ACTIONS:
            return queryset.filter(assessor_action__icontains=value)
        return queryset


class UntouchedFilter(admin.SimpleListFilter):
    title = "untouched"
    parameter_name = "untouched"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "No attempts yet"), ("no", "Attempted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(attempts_count=0)
        if self.value() == "no":
            return queryset.filter(attempts_count__gt=0)
        return queryset


# --- The exercise page --------------------------------------------------------------------------


class PrettyJSONField(forms.JSONField):
    """JSON edited indented, letters kept literal (Cyrillic stays readable)."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


def _json_widget(rows: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, "cols": 90, "class": "vLargeTextField"})


class ExerciseModerationForm(forms.ModelForm):
    """The editable content. Checked like an import when cleaned; saved by the edit service."""

    correct_answer = PrettyJSONField(
        widget=_json_widget(3),
        help_text='{"answer": "..."} for choose types, {"words": [...]} for fill-in-the-blank '
        "(one word per blank). Must be one of the options.",
    )

    class Meta:
        model = Exercise
        fields = ("data", "correct_answer", "grammar_tags", "language_level", "topic")
        field_classes = {"data": PrettyJSONField, "grammar_tags": PrettyJSONField}
        widgets = {"data": _json_widget(10), "grammar_tags": _json_widget(4)}
        help_texts = {
            "data": "As stored (correct option or words first). A story's audio fields are "
            "generated and not edited here: changing the story text sends it to new audio."
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        exercise = self.instance
        if exercise.pk is None:
            return
        if "data" in self.fields and exercise.exercise_type == ExerciseType.STORY_COMPREHENSION:
            self.initial["data"] = {
                key: value for key, value in exercise.data.items() if key not in AUDIO_KEYS
            }
        if "correct_answer" in self.fields:
            reference = exercise.verdicts.filter(is_reference=True).first()
            self.initial["correct_answer"] = reference.answer if reference else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors or self.instance.pk is None:
            return cleaned
        try:
            exercise_staff_edit_check(
                exercise=self.instance,
                data=cleaned.get("data"),
                correct_answer=cleaned.get("correct_answer"),
                grammar_tags=cleaned.get("grammar_tags"),
                language_level=cleaned.get("language_level"),
                topic=cleaned.get("topic"),
            )
        except ValidationError as error:
            raise ValidationError(error.messages) from error
        return cleaned


@dataclass(frozen=True)
class Choice:
    text: str
    is_correct: bool


def _exercise_view(exercise: Exercise, rows: list[AnswerRow]) -> dict[str, Any]:
    """The exercise as the bot shows it, the correct choices marked."""
    data = exercise.data
    correct = {row.answer_text for row in rows if row.is_correct}
    view: dict[str, Any] = {
        "task": render(f"task_{exercise.exercise_type}", "en"),
        "type": exercise.exercise_type,
    }
    if exercise.exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        reference = next((row for row in rows if row.is_reference), None)
        words = set(reference.answer_text.split(";")) if reference else set()
        view["sentence"] = [
            {"text": piece, "blank": index > 0}
            for index, piece in enumerate(str(data.get("text_with_blanks") or "").split(BLANK))
        ]
        view["choices"] = [Choice(str(w), str(w) in words) for w in data.get("words") or []]
        view["correct_answers"] = [
            row.answer_text.replace(";", " … ") for row in rows if row.is_correct
        ]
        return view
    view["choices"] = [Choice(str(o), str(o) in correct) for o in data.get("options") or []]
    view["correct_answers"] = [row.answer_text for row in rows if row.is_correct]
    if exercise.exercise_type == ExerciseType.STORY_COMPREHENSION:
        view["story"] = data.get("content_text") or ""
        view["audio_url"] = data.get("audio_url") or ""
        view["audio_file_id"] = data.get("audio_telegram_file_id") or ""
    if exercise.exercise_type == ExerciseType.CHOOSE_ACCENT:
        view["meaning"] = _telegram_html(str(data.get("meaning") or ""))
    return view


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"


def _telegram_html(text: str) -> SafeString:
    """Stored feedback as the bot renders it: cleaned to the subset, so safe to show as HTML."""
    return mark_safe(clean_telegram_html(text))  # only the allowed tags remain, without attributes


def _history(exercise: Exercise) -> list[dict[str, Any]]:
    reviews = exercise.reviews.order_by("-created_at", "-pk")
    return [
        {
            "review": review,
            "who": str(review.analysis.get("moderator") or review.get_source_display())
            if isinstance(review.analysis, dict)
            else review.get_source_display(),
            "details": json.dumps(
                {"analysis": review.analysis, "stats": review.stats},
                ensure_ascii=False,
                indent=2,
            )
            if review.analysis or review.stats
            else "",
        }
        for review in reviews
    ]


@admin.register(Exercise)
class ExerciseAdmin(ServiceSaveMixin):
    form = ExerciseModerationForm
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
    search_help_text = "Text, words and options (an exercise number finds that exercise)."
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
    fieldsets = (
        (
            "Content",
            {
                "fields": ("data", "correct_answer", "grammar_tags", "language_level", "topic"),
                "description": "Saving checks the content as an import does, recomputes its "
                "content hash (the same content as another exercise is refused), keeps this "
                "version in the history, drops the stored verdicts that no longer hold and "
                "publishes the exercise.",
            },
        ),
        (
            "Generated and audit",
            {
                "fields": (
                    ("exercise_type", "exercise_language", "persona", "source"),
                    ("status", "status_changed_at", "last_reviewed_at"),
                    ("attempts_count", "created_at", "updated_at"),
                    "content_hash",
                    "comments",
                )
            },
        ),
    )
    actions = ("publish", "archive", "send_to_review", "admin_review", "regenerate_audio")

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

    # --- columns ---

    @admin.display(description="exercise")
    def preview(self, exercise: Exercise) -> str:
        data = exercise.data if isinstance(exercise.data, dict) else {}
        text = (
            data.get("text_with_blanks")
            or data.get("content_text")
            or " / ".join(str(option) for option in data.get("options") or [])
        )
        return Truncator(str(text)).chars(80)

    @admin.display(description="error rate", ordering=F("error_rate").asc(nulls_first=True))
    def error_rate_display(self, exercise: Exercise) -> str:
        return _percent(getattr(exercise, "error_rate", None))

    @admin.display(description="assessor", ordering="assessor_action")
    def suggestion_display(self, exercise: Exercise) -> str:
        action = getattr(exercise, "assessor_action", None) or ""
        return f"{action} ✎" if getattr(exercise, "assessor_revision", None) else action

    @admin.display(description="correct answer")
    def correct_answer(self, exercise: Exercise) -> str:
        """The reference answer, shown when the page is read-only."""
        reference = exercise.verdicts.filter(is_reference=True).first()
        return reference.answer_text if reference else "–"

    # --- saving: the edit service ---

    def save_model(self, request: HttpRequest, obj: Exercise, form: Any, change: bool) -> None:
        cleaned = form.cleaned_data
        try:
            edit = exercise_staff_edit(
                exercise_id=obj.pk,
                data=cleaned["data"],
                correct_answer=cleaned["correct_answer"],
                grammar_tags=cleaned["grammar_tags"],
                language_level=cleaned.get("language_level"),
                topic=cleaned.get("topic"),
                user=_moderator(request),
                now=timezone.now(),
            )
        except ValidationError as error:
            self.report_failure(request, error)
            return
        for warning in edit.warnings:
            self.message_user(request, warning, messages.WARNING)
        if edit.dropped_verdicts:
            self.message_user(
                request,
                f"{edit.dropped_verdicts} stored verdict(s) that no longer hold were deleted.",
                messages.INFO,
            )
        obj.status = edit.review.new_status

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
            context["moderation"] = self._moderation_context(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _moderation_context(self, request: HttpRequest, exercise: Exercise) -> dict[str, Any]:
        rows = exercise_answer_rows(exercise=exercise)
        can_change = self.has_change_permission(request, exercise)
        actions = [
            {"name": name, "label": label}
            for name, (label, _) in STAFF_ACTIONS.items()
            if name != "regenerate_audio"
            or exercise.exercise_type == ExerciseType.STORY_COMPREHENSION
        ]
        error_rate = attempts_weighted_error_rate(
            attempts=exercise.attempts.all(),
            exercise_language=exercise.exercise_language,
            since=exercise.last_reviewed_at,
        )
        return {
            "exercise": _exercise_view(exercise, rows),
            "answers": [
                {
                    "row": row,
                    "verdicts": [
                        {"verdict": verdict, "feedback": _telegram_html(verdict.feedback)}
                        for verdict in row.verdicts
                    ],
                    "can_accept": can_change
                    and not row.is_accepted
                    and answer_among_options(exercise=exercise, answer=row.answer_text),
                }
                for row in rows
            ],
            "error_rate": error_rate,
            "error_rate_display": _percent(error_rate.rate),
            "min_weighted_attempts": settings.QUALITY_MIN_WEIGHTED_ATTEMPTS,
            "threshold_display": _percent(settings.QUALITY_ERROR_RATE_THRESHOLD),
            "history": _history(exercise),
            "actions": actions if can_change else [],
            "moderate_url": reverse("admin:exercises_exercise_moderate", args=[exercise.pk]),
        }

    # --- the page's buttons ---

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
        """One decision from the exercise page: a status action or accepting an answer."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        exercise = self.get_object(request, unquote(object_id))
        if exercise is None:
            raise Http404
        if not self.has_change_permission(request, exercise):
            raise PermissionDenied
        action = request.POST.get("action", "")
        user = _moderator(request)
        now = timezone.now()
        try:
            if action == "accept_answer":
                verdict = exercise_add_accepted_answer(
                    exercise_id=exercise.pk,
                    answer=request.POST.get("answer", ""),
                    user=user,
                    now=now,
                )
                message = f"{verdict.answer_text!r} is now accepted as correct."
            elif action in STAFF_ACTIONS:
                label, service = STAFF_ACTIONS[action]
                review = service(exercise_id=exercise.pk, user=user, now=now)
                message = f"{label}: #{exercise.pk} is now {review.new_status}."
            else:
                return HttpResponseBadRequest("unknown action")
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)
            if action == "regenerate_audio":
                self._warn_audio_off(request, [exercise.exercise_language])
        return HttpResponseRedirect(reverse("admin:exercises_exercise_change", args=[exercise.pk]))

    # --- bulk actions ---

    def _run(self, request: HttpRequest, queryset: QuerySet[Exercise], action: str) -> None:
        label, service = STAFF_ACTIONS[action]
        user = _moderator(request)
        now = timezone.now()
        done = 0
        for exercise_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                service(exercise_id=exercise_id, user=user, now=now)
            except ValidationError as error:
                self.message_user(
                    request, f"#{exercise_id}: {' '.join(error.messages)}", messages.ERROR
                )
            else:
                done += 1
        if done:
            self.message_user(request, f"{label}: {done} exercise(s).", messages.SUCCESS)

    @admin.action(description="Publish", permissions=["change"])
    def publish(self, request: HttpRequest, queryset: QuerySet[Exercise]) -> None:
        self._run(request, queryset, "publish")

    @admin.action(description="Archive", permissions=["change"])
    def archive(self, request: HttpRequest, queryset: QuerySet[Exercise]) -> None:
        self._run(request, queryset, "archive")

    @admin.action(description="Re-run the LLM review (pending_review)", permissions=["change"])
    def send_to_review(self, request: HttpRequest, queryset: QuerySet[Exercise]) -> None:
        self._run(request, queryset, "send_to_review")

    @admin.action(description="Mark for admin review", permissions=["change"])
    def admin_review(self, request: HttpRequest, queryset: QuerySet[Exercise]) -> None:
        self._run(request, queryset, "admin_review")

    @admin.action(description="Regenerate the story audio", permissions=["change"])
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
                    f"{bot_id} stories cannot be voiced now ({reason}); they wait in "
                    "audio_generation_error for the refill job's repair.",
                    messages.WARNING,
                )


# --- Verdicts -----------------------------------------------------------------------------------


@admin.register(ExerciseAnswer)
class ExerciseAnswerAdmin(ServiceSaveMixin):
    list_display = (
        "id",
        "exercise",
        "answer_text",
        "is_correct",
        "feedback_language",
        "is_reference",
        "created_by",
        "attempts_count",
        "updated_at",
    )
    list_filter = ("is_correct", "is_reference", "feedback_language")
    search_fields = ("answer_text", "feedback", "created_by")
    list_select_related = ("exercise",)
    fields = (
        "exercise",
        "answer_text",
        "is_correct",
        "feedback",
        "feedback_language",
        "error_tags",
        "is_reference",
        "created_by",
        "attempts_count",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "exercise",
        "answer_text",
        "feedback_language",
        "error_tags",
        "is_reference",
        "created_by",
        "attempts_count",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.is_reference:
            return (*self.readonly_fields, "is_correct")  # it is the correct answer
        return self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_reference:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(
        self, request: HttpRequest, obj: ExerciseAnswer, form: Any, change: bool
    ) -> None:
        try:
            verdict_staff_edit(
                verdict_id=obj.pk,
                is_correct=obj.is_correct,
                feedback=obj.feedback,
                user=_moderator(request),
                now=timezone.now(),
            )
        except ValidationError as error:
            self.report_failure(request, error)

    def delete_model(self, request: HttpRequest, obj: ExerciseAnswer) -> None:
        verdict_staff_delete(verdict_id=obj.pk, user=_moderator(request), now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ExerciseAnswer]) -> None:
        user = _moderator(request)
        now = timezone.now()
        for verdict_id in queryset.filter(is_reference=False).values_list("pk", flat=True):
            verdict_staff_delete(verdict_id=verdict_id, user=user, now=now)


# --- The history --------------------------------------------------------------------------------


@admin.register(ExerciseReview)
class ExerciseReviewAdmin(admin.ModelAdmin):
    """Read-only: every decision on an exercise, by the jobs or by staff."""

    list_display = (
        "id",
        "exercise",
        "source",
        "previous_status",
        "new_status",
        "note",
        "created_at",
    )
    list_filter = ("source", "new_status", "previous_status")
    search_fields = ("note",)
    list_select_related = ("exercise",)
    raw_id_fields = ("exercise",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
