"""The exercise bank: exercises, their cached verdicts and the audit of quality decisions."""

from __future__ import annotations

import random

from django.db import models
from django.utils import timezone

from duoniche.enums import (
    ExerciseSource,
    ExerciseStatus,
    ExerciseTopic,
    ExerciseType,
    LanguageLevel,
    ReviewSource,
)


def random_key() -> float:
    """Uniform in [0, 1): the position of an exercise in random picks without a table scan."""
    return random.random()


def empty_tags() -> dict[str, list[str]]:
    return {"grammar": [], "vocabulary": []}


class ExerciseQuerySet(models.QuerySet["Exercise"]):
    def published(self) -> ExerciseQuerySet:
        return self.filter(status=ExerciseStatus.PUBLISHED)


class Exercise(models.Model):
    exercise_type = models.CharField(max_length=32, choices=ExerciseType.choices)
    exercise_language = models.CharField(max_length=50)
    language_level = models.CharField(max_length=2, choices=LanguageLevel.choices)
    topic = models.CharField(max_length=32, choices=ExerciseTopic.choices)
    data = models.JSONField()
    status = models.CharField(
        max_length=32, choices=ExerciseStatus.choices, default=ExerciseStatus.PUBLISHED
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    persona = models.CharField(max_length=50, null=True, blank=True)
    grammar_tags = models.JSONField(default=empty_tags)
    comments = models.TextField(blank=True, default="")
    content_hash = models.CharField(max_length=64, unique=True)
    random_key = models.FloatField(default=random_key)
    source = models.CharField(
        max_length=16, choices=ExerciseSource.choices, default=ExerciseSource.GENERATED
    )
    attempts_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ExerciseQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(random_key__gte=0) & models.Q(random_key__lt=1),
                name="exercise_random_key_range",
            )
        ]
        indexes = [
            models.Index(
                fields=[
                    "exercise_language",
                    "status",
                    "exercise_type",
                    "language_level",
                    "topic",
                    "random_key",
                ],
                name="exercise_pick_exact_idx",
            ),
            models.Index(
                fields=["exercise_language", "status", "exercise_type", "random_key"],
                name="exercise_pick_type_idx",
            ),
            models.Index(
                fields=["exercise_language", "status", "random_key"], name="exercise_pick_any_idx"
            ),
            models.Index(
                fields=["exercise_language", "exercise_type", "status", "attempts_count"],
                name="exercise_stock_idx",
            ),
            models.Index(
                fields=["status", "status_changed_at"], name="exercise_status_changed_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.exercise_language} {self.exercise_type} {self.language_level}"


class ExerciseAnswer(models.Model):
    """A cached verdict: one judgement per (exercise, canonical answer, feedback language)."""

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="verdicts")
    answer = models.JSONField()
    answer_text = models.TextField()
    answer_key = models.CharField(max_length=64)
    is_correct = models.BooleanField()
    feedback = models.TextField(blank=True, default="")
    feedback_language = models.CharField(max_length=16, blank=True, default="")
    error_tags = models.JSONField(null=True, blank=True)
    is_reference = models.BooleanField(default=False)
    created_by = models.CharField(max_length=100)
    attempts_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "verdict"
        constraints = [
            models.UniqueConstraint(
                fields=["exercise", "answer_key", "feedback_language"],
                name="uniq_verdict_answer_language",
            ),
            models.UniqueConstraint(
                fields=["exercise"],
                condition=models.Q(is_reference=True),
                name="uniq_reference_answer",
            ),
        ]
        indexes = [
            models.Index(fields=["exercise", "answer_key"], name="verdict_exercise_answer_idx")
        ]

    def __str__(self) -> str:
        verdict = "correct" if self.is_correct else "wrong"
        return f"{self.answer_text} on #{self.exercise_id}: {verdict}"


class ExerciseReview(models.Model):
    """One quality decision on an exercise, by a job or by staff."""

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="reviews")
    created_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=32, choices=ReviewSource.choices)
    previous_status = models.CharField(max_length=32, choices=ExerciseStatus.choices)
    new_status = models.CharField(max_length=32, choices=ExerciseStatus.choices)
    stats = models.JSONField(default=dict, blank=True)
    analysis = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["exercise", "created_at"], name="review_exercise_idx")]

    def __str__(self) -> str:
        return f"#{self.exercise_id} {self.previous_status} -> {self.new_status} ({self.source})"
