"""The `backend_*` Prometheus metrics (docs/jobs.md); names and labels kept from before.

E = exercise_type, level; U = cohort, plan, target_language, user_language, language_level.

Every label value comes from a closed set, so no caller can mint new series (each label set is a
series kept by Prometheus for good): `user_labels` and `exercise_labels` map a learner's language
to the six interface languages, a bot id to the configured bots, a level or exercise type to its
enum, anything else to "other"; an absent value (a payment without a profile) stays "". `cohort`
and `plan` are written by staff only (never by the API), so they pass through as stored.
"""

from __future__ import annotations

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram, Summary

from duoniche.enums import ExerciseType, LanguageLevel
from duoniche.languages import is_bot_id

E = ("exercise_type", "level")
U: tuple[str, ...] = ("cohort", "plan", "target_language", "user_language", "language_level")
G = ("exercise_type", "level", "user_language", "target_language", "llm_model")

exercise_sent = Counter("backend_exercise_sent", "Exercises served", E)
exercise_sent_repetition = Counter(
    "backend_exercise_sent_repetition", "Exercises served from repetition", E
)
exercise_attempt = Counter("backend_exercise_attempt", "Attempts recorded", E)
exercise_time_for_attempt = Histogram(
    "backend_exercise_time_for_attempt_seconds", "Time from serving to answering", E
)
exercise_validation_time = Histogram(
    "backend_exercise_validation_time_seconds", "Validation pipeline duration", E
)
exercise_error = Counter("backend_exercise_error", "Incorrect attempts", E)
new_users = Counter("backend_new_users", "Users created", U)
user_session_length = Histogram("backend_user_session_length_seconds", "Session length", U)
exercises_per_session = Histogram("backend_exercises_per_session", "Exercises per session", U)
full_sessions = Counter("backend_full_sessions", "Sessions completed", U)
frozen_attempts = Counter("backend_frozen_attempts", "Requests while frozen", U)
set_session_reminder = Counter(
    "backend_set_session_reminder", "Reminder preference set", (*U, "wants_session_reminders")
)
session_unlocked_by_payment = Counter(
    "backend_session_unlocked_by_payment", "Sessions unlocked by payment", U
)
payment_amount = Counter("backend_payment_amount", "Stars received", (*U, "currency"))
payment_rejected = Counter("backend_payment_rejected", "Payments rejected", ("reason",))
payment_refunded = Counter("backend_payment_refunded", "Payments refunded", ("source",))
llm_input_tokens = Counter("backend_llm_input_tokens", "LLM input tokens", ("purpose", "llm_model"))
llm_output_tokens = Counter(
    "backend_llm_output_tokens", "LLM output tokens", ("purpose", "llm_model")
)
llm_calls = Counter("backend_llm_calls", "LLM calls", ("purpose", "llm_model", "outcome"))
llm_cost_usd = Counter("backend_llm_cost_usd", "LLM spend in USD", ("purpose", "llm_model"))
llm_budget_exhausted = Gauge(
    "backend_llm_budget_exhausted",
    "1 while the daily LLM budget is exhausted",
    multiprocess_mode="mostrecent",
)
exercise_created = Counter("backend_exercise_created", "Exercises generated", G)
exercise_rejected = Counter("backend_exercise_rejected", "Exercises rejected by the assessor", G)
exercise_creation_time = Histogram(
    "backend_exercise_creation_time_seconds", "Generation duration", G
)
exercise_verification_time = Histogram(
    "backend_exercise_verification_time_seconds", "Assessment duration", G
)
exercise_verified = Counter("backend_exercise_verified", "Assessments done", G)
job_runs = Counter("backend_job_runs", "Periodic job runs", ("job", "outcome"))
job_duration = Histogram("backend_job_duration_seconds", "Periodic job duration", ("job",))
job_last_success = Gauge(
    "backend_job_last_success_timestamp_seconds",
    "When each job last succeeded",
    ("job",),
    multiprocess_mode="mostrecent",
)
notification_enqueue_attempt = Counter(
    "backend_notification_enqueue_attempt", "Notifications to enqueue", ("notification_type",)
)
notification_enqueue_success = Counter(
    "backend_notification_enqueue_success", "Notifications enqueued", ("notification_type",)
)
notification_enqueue_failure = Counter(
    "backend_notification_enqueue_failure",
    "Notifications that failed to enqueue",
    ("reason", "notification_type"),
)
notification_enqueue_duration = Histogram(
    "backend_notification_enqueue_duration_seconds",
    "Time to enqueue a notification",
    ("notification_type",),
)
legacy_endpoint_calls = Counter(
    "backend_legacy_endpoint_calls", "Calls to deprecated endpoints", ("endpoint",)
)
api_errors = Counter("backend_api_errors", "API error responses", ("code",))

# HTTP metrics under the previous service's names (docs/api.md), kept so dashboards survive;
# recorded by `duoniche.http_metrics.HttpMetricsMiddleware`; `handler` is a route template.
http_requests = Counter(
    "http_requests",
    "HTTP requests by handler, method and status group",
    ("handler", "method", "status"),
)
http_request_size = Summary(
    "http_request_size_bytes", "HTTP request body sizes (Content-Length)", ("handler",)
)
http_response_size = Summary("http_response_size_bytes", "HTTP response body sizes", ("handler",))
http_request_duration = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration by handler and method",
    ("handler", "method"),
    buckets=(0.1, 0.5, 1.0),
)
#: Fine buckets for the unlabelled duration histogram (one series set for the whole service).
HIGHR_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    2.5,
    3.0,
)
HIGHR_BUCKETS += (4.0, 5.0, 7.5, 10.0, 30.0, 60.0)
http_request_duration_highr = Histogram(
    "http_request_duration_highr_seconds",
    "HTTP request duration, fine buckets, no labels",
    buckets=HIGHR_BUCKETS,
)


OTHER = "other"
_LEVELS = frozenset(LanguageLevel.values)
_EXERCISE_TYPES = frozenset(ExerciseType.values)


def _interface_languages() -> frozenset[str]:
    return frozenset(code for code, _name in settings.LANGUAGES)


def user_language_label(value: str | None) -> str:
    """The interface language of a learner's language tag (`uk-UA` → `uk`), else "other"."""
    if not value:
        return ""
    primary = value.split("-", 1)[0].split("_", 1)[0].lower()
    return primary if primary in _interface_languages() else OTHER


def bot_label(value: str | None) -> str:
    """A configured bot id, else "other"."""
    return value if value and is_bot_id(value) else OTHER


def level_label(value: str | None) -> str:
    if not value:
        return ""
    return value if value in _LEVELS else OTHER


def exercise_type_label(value: str | None) -> str:
    return value if value in _EXERCISE_TYPES else OTHER


def exercise_labels(*, exercise_type: str | None, level: str | None) -> dict[str, str]:
    """The E labels (`exercise_type`, `level`) from closed sets."""
    return {"exercise_type": exercise_type_label(exercise_type), "level": level_label(level)}


def user_labels(
    *, cohort: str | None, plan: str | None, target_language: str, user_language: str, level: str
) -> dict[str, str]:
    """The U labels; see the module docstring for the closed sets."""
    return {
        "cohort": cohort or "",
        "plan": plan or "",
        "target_language": bot_label(target_language),
        "user_language": user_language_label(user_language),
        "language_level": level_label(level),
    }
