"""The exercise bank's app: registers its periodic jobs (docs/jobs.md) and its stock gauge."""

from collections.abc import Mapping

from django.apps import AppConfig


def _untouched_stock() -> Mapping[tuple[str, str], int]:
    """The refill job's own count, imported when Prometheus first scrapes (not at start)."""
    from exercises.refill import untouched_stock

    return untouched_stock()


class ExercisesConfig(AppConfig):
    name = "exercises"

    def ready(self) -> None:
        from duoniche.dashboard import register_section
        from exercises.dashboard import dashboard_exercises

        register_section(
            name="exercises",
            permission="exercises.view_exercise",
            build=dashboard_exercises,
            order=10,
        )

        from duoniche.jobs import Job, lazy_body, register_job
        from duoniche.metrics_collector import untouched_counter_register

        untouched_counter_register(_untouched_stock)

        register_job(
            Job(
                name="refill_stock",
                body=lazy_body("exercises.refill.stock_refill"),
                task="exercises.refill_stock",
                soft_time_limit=1500,
                time_limit=1800,
                interval_setting="EXERCISE_REFILL_INTERVAL",
                description="exercise stock refill and broken-audio repair",
            )
        )
        register_job(
            Job(
                name="review_processor",
                body=lazy_body("exercises.review.review_processor"),
                task="exercises.review_processor",
                soft_time_limit=2700,
                time_limit=3000,
                interval_setting="REVIEW_PROCESSOR_INTERVAL_SECONDS",
                description="second opinion on exercises flagged for review",
            )
        )
