"""Value lists shared by every app. Stored values are these strings."""

from __future__ import annotations

from django.db import models


class ExerciseType(models.TextChoices):
    FILL_IN_THE_BLANK = "fill_in_the_blank"
    CHOOSE_SENTENCE = "choose_sentence"
    CHOOSE_ACCENT = "choose_accent"
    STORY_COMPREHENSION = "story_comprehension"


class UiTemplate(models.TextChoices):
    FILL_IN_THE_BLANK = "fill_in_the_blank"
    CHOOSE = "choose"
    AUDIO_CHOOSE = "audio_choose"


UI_TEMPLATE_BY_TYPE: dict[str, str] = {
    ExerciseType.FILL_IN_THE_BLANK: UiTemplate.FILL_IN_THE_BLANK,
    ExerciseType.CHOOSE_SENTENCE: UiTemplate.CHOOSE,
    ExerciseType.CHOOSE_ACCENT: UiTemplate.CHOOSE,
    ExerciseType.STORY_COMPREHENSION: UiTemplate.AUDIO_CHOOSE,
}


class LanguageLevel(models.TextChoices):
    A1 = "A1"
    A2 = "A2"
    B1 = "B1"
    B2 = "B2"
    C1 = "C1"
    C2 = "C2"


class LevelChangeSource(models.TextChoices):
    POLICY = "policy"
    STAFF = "staff"


class ExerciseTopic(models.TextChoices):
    GENERAL = "general"
    SHOPPING = "shopping"
    TRAVEL = "travel"
    FOOD = "food"
    SPORTS = "sports"
    WEATHER = "weather"
    WORK = "work"
    HEALTH = "health"
    EMERGENCIES = "emergencies"
    RELATIONSHIPS = "relationships"
    TECH = "tech"
    EDUCATION = "education"
    ENTERTAINMENT = "entertainment"
    MONEY = "money"
    HOME = "home"
    TRANSPORT = "transport"
    RESTAURANT = "restaurant"
    FAMILY = "family"
    PHARMACY = "pharmacy"
    NATURE = "NATURE"
    ANIMALS = "ANIMALS"
    KIDS = "KIDS"
    HOUSING = "housing"
    CULTURE = "culture"
    DATING = "dating"
    WINE = "wine"
    DIGITAL_LIFE = "digital_life"
    PUBLIC_SERVICES = "public_services"


class ExerciseStatus(models.TextChoices):
    PUBLISHED = "published"
    PENDING_REVIEW = "pending_review"
    REJECTED_BY_ASSESSOR = "rejected_by_assessor"
    REJECTED_BY_ERROR = "rejected_by_error"
    ARCHIVED = "archived"
    AUDIO_GENERATION_ERROR = "audio_generation_error"
    PROCESSING_ERROR_RETRY = "processing_error_retry"
    PENDING_ADMIN_REVIEW = "pending_admin_review"


class ExerciseSource(models.TextChoices):
    GENERATED = "generated"
    IMPORTED = "imported"
    STAFF = "staff"


class ReviewSource(models.TextChoices):
    GENERATION_ASSESSOR = "generation_assessor"
    QUALITY_MONITOR = "quality_monitor"
    REVIEW_PROCESSOR = "review_processor"
    STAFF = "staff"


class UserAction(models.TextChoices):
    NEW_EXERCISE = "new_exercise"
    PRAISE_AND_NEXT_SET = "praise_and_next_set"
    CONGRATULATIONS_AND_WAIT = "congratulations_and_wait"
    LIMIT_REACHED = "limit_reached"
    ERROR = "error"


class UserStatus(models.TextChoices):
    FREE = "free"
    TRIAL = "trial"
    PREMIUM = "premium"
    CUSTOM = "custom"


class ProfileStatus(models.TextChoices):
    ACTIVE = "active"
    BLOCKED = "blocked"
    INACTIVE = "inactive"


class ReportStatus(models.TextChoices):
    PENDING = "PENDING"
    GENERATING = "GENERATING"
    GENERATED = "GENERATED"
    SENT = "SENT"
    FAILED = "FAILED"


class NotificationType(models.TextChoices):
    SESSION_REMINDER = "session_reminder"
    LONG_BREAK_REMINDER = "long_break_reminder"
    WEEKLY_REPORT = "weekly_report"


class NotificationStatus(models.TextChoices):
    PENDING = "pending"
    ENQUEUED = "enqueued"
    FAILED = "failed"
    SKIPPED = "skipped"


class PaymentSource(models.TextChoices):
    SESSION_UNLOCK = "session_unlock"
    REPORT_DONATION = "report_donation"


class PaymentStatus(models.TextChoices):
    PAID = "paid"
    #: A refund holds the payment while it calls Telegram (claimed at `refund_started_at`).
    REFUNDING = "refunding"
    REFUNDED = "refunded"


class LLMPurpose(models.TextChoices):
    GENERATION = "generation"
    VALIDATION = "validation"
    ASSESSMENT = "assessment"
    TRANSLATION = "translation"
    REPORTS = "reports"


class Alphabet(models.TextChoices):
    LATIN = "latin"
    CYRILLIC = "cyrillic"


class LongBreakStep(models.TextChoices):
    D1 = "1d"
    D3 = "3d"
    D5 = "5d"
    D8 = "8d"
    D13 = "13d"
    D21 = "21d"
    D30 = "30d"
    D90 = "90d"


class JobRunStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
