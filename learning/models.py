"""Learners: Telegram users, their per-bot learning state, their attempts and weekly reports."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from duoniche.enums import (
    LanguageLevel,
    LevelChangeSource,
    LongBreakStep,
    ProfileStatus,
    ReportStatus,
    UserStatus,
)


class TelegramUser(models.Model):
    """A Telegram person (not a Django auth user); wire `user_id` is the primary key."""

    telegram_id = models.CharField(max_length=64)
    username = models.CharField(max_length=255, null=True, blank=True)
    name = models.CharField(max_length=255, null=True, blank=True)
    telegram_data = models.JSONField(null=True, blank=True)
    cohort = models.CharField(max_length=100, null=True, blank=True)
    plan = models.CharField(max_length=100, null=True, blank=True)
    status = models.CharField(max_length=16, choices=UserStatus.choices, default=UserStatus.FREE)
    status_expires_at = models.DateTimeField(null=True, blank=True)
    status_source = models.CharField(max_length=100, null=True, blank=True)
    custom_settings = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Telegram user"
        constraints = [
            models.UniqueConstraint(fields=["telegram_id"], name="uniq_user_telegram_id")
        ]

    def __str__(self) -> str:
        return f"{self.username or self.name or self.telegram_id} (#{self.pk})"


class BotProfile(models.Model):
    """Learning state of one user in one bot: level, session counters, freeze, streak, reminders."""

    # No index of its own: `uniq_profile_user_bot` (user, bot_id) serves every lookup by user, and
    # a second index would be one more write on each (never HOT) session update.
    user = models.ForeignKey(
        TelegramUser, on_delete=models.CASCADE, related_name="profiles", db_index=False
    )
    bot_id = models.CharField(max_length=50)
    user_language = models.CharField(max_length=16, default="en")
    language_level = models.CharField(
        max_length=2, choices=LanguageLevel.choices, default=LanguageLevel.A2
    )
    status = models.CharField(
        max_length=16, choices=ProfileStatus.choices, default=ProfileStatus.ACTIVE
    )
    reason = models.TextField(null=True, blank=True)
    exercises_get_in_session = models.PositiveIntegerField(default=0)
    exercises_get_in_set = models.PositiveIntegerField(default=0)
    errors_count_in_set = models.PositiveIntegerField(default=0)
    # How many of the set's exercises were due reviews (docs/learning.md, spaced review), and no
    # later than when the earliest of the learner's mistakes in this bot is due (null: none):
    # next-action looks for a due review only once this time has come.
    reviews_get_in_set = models.PositiveSmallIntegerField(default=0)
    review_due_at = models.DateTimeField(null=True, blank=True)
    last_exercise_at = models.DateTimeField(null=True, blank=True)
    # The exercise served last (a plain id, no foreign key: bookkeeping, never joined). A due
    # review the learner left unanswered is not served twice in a row.
    last_exercise_id = models.BigIntegerField(null=True, blank=True)
    session_started_at = models.DateTimeField(null=True, blank=True)
    session_frozen_until = models.DateTimeField(null=True, blank=True)
    current_streak_days = models.PositiveIntegerField(default=0)
    # Streak freezes held (earned one per STREAK_FREEZE_EVERY_DAYS days of streak), and how many
    # were used on missed days since the learner was last told.
    streak_freezes = models.PositiveSmallIntegerField(default=0)
    streak_freezes_used = models.PositiveSmallIntegerField(default=0)
    # When the level last changed (by the level policy or by staff): the policy weighs only the
    # answers given since, so one change is never undone by the answers that caused it.
    level_changed_at = models.DateTimeField(null=True, blank=True)
    wants_session_reminders = models.BooleanField(null=True, blank=True)
    last_long_break_reminder_type_sent = models.CharField(
        max_length=8, choices=LongBreakStep.choices, null=True, blank=True
    )
    last_long_break_reminder_sent_at = models.DateTimeField(null=True, blank=True)
    last_report_generated_at = models.DateTimeField(null=True, blank=True)
    rating = models.FloatField(null=True, blank=True)
    rating_last_calculated_at = models.DateTimeField(null=True, blank=True)
    settings = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "bot profile"
        constraints = [
            models.UniqueConstraint(fields=["user", "bot_id"], name="uniq_profile_user_bot")
        ]
        indexes = [
            models.Index(fields=["bot_id", "status"], name="profile_bot_status_idx"),
            models.Index(fields=["status", "session_frozen_until"], name="profile_frozen_idx"),
            models.Index(fields=["status", "last_exercise_at"], name="profile_last_exercise_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.bot_id}"


class ExerciseAttempt(models.Model):
    """One recorded answer; it carries a copy of the verdict it got."""

    # `user` and `exercise` lead the named indexes below, which serve their lookups and cascades;
    # Django's own single-column indexes would only add two writes to every recorded attempt.
    user = models.ForeignKey(
        TelegramUser, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    exercise = models.ForeignKey(
        "exercises.Exercise", on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    verdict = models.ForeignKey(
        "exercises.ExerciseAnswer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attempts",
    )
    answer = models.JSONField()
    answer_text = models.TextField()
    answer_key = models.CharField(max_length=64)
    is_correct = models.BooleanField()
    feedback = models.TextField(blank=True, default="")
    error_tags = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["user", "exercise", "created_at"], name="attempt_user_exercise_idx"
            ),
            models.Index(
                fields=["user", "exercise"],
                condition=models.Q(is_correct=False),
                name="attempt_user_mistake_idx",
            ),
            models.Index(fields=["exercise", "created_at"], name="attempt_exercise_created_idx"),
            models.Index(fields=["user", "created_at"], name="attempt_user_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on #{self.exercise_id}: {'correct' if self.is_correct else 'wrong'}"


class ReviewCard(models.Model):
    """FSRS memory state of one exercise for one learner, updated with every recorded answer.

    Written by `learning/review_cards.py` inside the statement that records the attempt. Cards of
    exercises the learner has got wrong at least once (`mistakes > 0`) are served again when due.
    """

    user = models.ForeignKey(
        TelegramUser, on_delete=models.CASCADE, related_name="review_cards", db_index=False
    )
    exercise = models.ForeignKey(
        "exercises.Exercise", on_delete=models.CASCADE, related_name="review_cards"
    )
    bot_id = models.CharField(max_length=50)
    # fsrs.State: 1 learning, 2 review, 3 relearning; `step` within the (re)learning steps.
    state = models.PositiveSmallIntegerField()
    step = models.PositiveSmallIntegerField(null=True, blank=True)
    stability = models.FloatField(null=True, blank=True)
    difficulty = models.FloatField(null=True, blank=True)
    due = models.DateTimeField()
    last_review = models.DateTimeField()
    reviews = models.PositiveIntegerField(default=0)
    mistakes = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "exercise"], name="uniq_review_card")
        ]
        indexes = [
            # next-action's one read of a learner's due mistakes in a bot, earliest first.
            models.Index(
                fields=["user", "bot_id", "due"],
                condition=models.Q(mistakes__gt=0),
                name="review_card_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on #{self.exercise_id}, due {self.due:%Y-%m-%d %H:%M}"


class LevelChange(models.Model):
    """One change of a profile's level: by the level policy (with its figures) or by staff."""

    profile = models.ForeignKey(BotProfile, on_delete=models.CASCADE, related_name="level_changes")
    from_level = models.CharField(max_length=2, choices=LanguageLevel.choices)
    to_level = models.CharField(max_length=2, choices=LanguageLevel.choices)
    source = models.CharField(max_length=16, choices=LevelChangeSource.choices)
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.from_level} → {self.to_level} ({self.source})"


class WeeklyReport(models.Model):
    """A learner's week in one bot: the short summary and, on request, the detailed report."""

    user = models.ForeignKey(TelegramUser, on_delete=models.CASCADE, related_name="weekly_reports")
    bot_id = models.CharField(max_length=50)
    week_start_date = models.DateField()
    short_report = models.TextField()
    full_report = models.TextField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.PENDING
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    generated_at = models.DateTimeField(default=timezone.now)
    short_notified_at = models.DateTimeField(null=True, blank=True)
    full_generated_at = models.DateTimeField(null=True, blank=True)
    full_sent_at = models.DateTimeField(null=True, blank=True)
    generation_attempts = models.PositiveSmallIntegerField(default=0)
    # The generation job's outbox (learning/report_services.py): NULL while a GENERATING report's
    # job is not known to be in the broker (the sweep queues it); set when a publish succeeded or
    # a worker claimed the report. Both are cleared by the transition to GENERATING.
    generation_queued_at = models.DateTimeField(null=True, blank=True)
    # When a worker claimed the report: a second message for it is skipped while this is recent.
    generation_started_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "bot_id", "week_start_date"], name="uniq_report_user_bot_week"
            )
        ]
        indexes = [
            models.Index(
                fields=["user", "bot_id", "week_start_date"], name="report_user_bot_week_idx"
            ),
            models.Index(fields=["status", "full_generated_at"], name="report_status_idx"),
            # The sweep's queue: the few reports waiting for their job, oldest first.
            models.Index(
                fields=["status_changed_at"],
                name="report_generation_waiting_idx",
                condition=models.Q(
                    status=ReportStatus.GENERATING, generation_queued_at__isnull=True
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"report #{self.pk} {self.bot_id} week of {self.week_start_date}"
