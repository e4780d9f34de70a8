"""The review queue: the changelist filters, and the way to the next item after a decision.

The queue opens on the exercises waiting for a decision; the moderator narrows it with filters.
After a decision on the exercise page, `QueueNavigator` finds the next exercise of the same queue
(the changelist the moderator came from, kept in `_changelist_filters`), or says it is empty.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import SuspiciousOperation
from django.db.models import Q, QuerySet
from django.http import HttpRequest, QueryDict
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from duoniche.enums import ExerciseStatus
from exercises.models import Exercise

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
#: How far down the queue the next item is looked for in the queue's own order; past it (a
#: very long filtered bank) the next item is the first one of the queue.
NEXT_WINDOW = 1000


class QueueFilter(admin.SimpleListFilter):
    """Opens on the exercises to review; "All" shows the whole bank."""

    title = _("queue")
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

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(self.TO_REVIEW, _("To review")), (self.ALL, _("All"))]

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

    title = _("error rate")
    parameter_name = "error_rate"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        threshold = settings.QUALITY_ERROR_RATE_THRESHOLD
        return [
            ("none", _("No attempts since the review")),
            ("low", _("Below 25%")),
            ("mid", _("25%% to %(threshold)s") % {"threshold": f"{threshold:.0%}"}),
            ("high", _("Above %(threshold)s") % {"threshold": f"{threshold:.0%}"}),
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

    title = _("assessor suggestion")
    parameter_name = "suggestion"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            *((action, action) for action in ASSESSOR_ACTIONS),
            ("revision", _("Any, with a suggested revision")),
            ("none", _("No suggestion")),
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
    title = _("untouched")
    parameter_name = "untouched"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("No attempts yet")), ("no", _("Attempted"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(attempts_count=0)
        if self.value() == "no":
            return queryset.filter(attempts_count__gt=0)
        return queryset


class QueueNavigator:
    """The next exercise of the moderator's queue after a decision on `current_id`.

    Built before the decision (it remembers the queue's order then), asked after it: the next
    exercise is the first one after the current one that is still in the queue, else the first
    other exercise still in it; None when the queue has nothing else.
    """

    def __init__(self, *, model_admin: Any, request: HttpRequest, current_id: int) -> None:
        self.model_admin = model_admin
        self.request = request
        self.current_id = current_id
        self.filters = request.GET.get("_changelist_filters", "")
        self.after: list[int] = []

    def remember_order(self) -> None:
        """Note the queue's order before the decision (the decision may move the exercise)."""
        order = list(self.queue.values_list("pk", flat=True)[:NEXT_WINDOW])
        self.after = order[order.index(self.current_id) + 1 :] if self.current_id in order else []

    @cached_property
    def queue(self) -> QuerySet[Exercise]:
        return self._queue(self.request)

    def _queue(self, request: HttpRequest) -> QuerySet[Exercise]:
        """The changelist's filtered and ordered queryset (the default queue if filters are bad)."""
        queue_request = copy.copy(request)
        for filters in (self.filters, ""):
            queue_request.GET = QueryDict(filters)
            try:
                changelist = self.model_admin.get_changelist_instance(queue_request)
            except (IncorrectLookupParameters, SuspiciousOperation):
                self.filters = ""
                continue
            return changelist.get_queryset(queue_request)
        return self.model_admin.get_queryset(request).none()

    def next_id(self) -> int | None:
        still_there = set(self.queue.filter(pk__in=self.after).values_list("pk", flat=True))
        for exercise_id in self.after:
            if exercise_id in still_there:
                return exercise_id
        return self.queue.exclude(pk=self.current_id).values_list("pk", flat=True).first()

    def exercise_url(self, exercise_id: int) -> str:
        url = reverse("admin:exercises_exercise_change", args=[exercise_id])
        return f"{url}?{urlencode({'_changelist_filters': self.filters})}" if self.filters else url

    def queue_url(self) -> str:
        url = reverse("admin:exercises_exercise_changelist")
        return f"{url}?{self.filters}" if self.filters else url
