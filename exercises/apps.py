"""The exercise bank's app: registers its periodic jobs (docs/jobs.md) and its stock gauge."""

from django.apps import AppConfig


class ExercisesConfig(AppConfig):
    name = "exercises"

    def ready(self) -> None:
        from duoniche.jobs import Job, lazy_body, register_job
        from duoniche.metrics_collector import untouched_counter_register

        untouched_counter_register(lazy_body("exercises.refill.untouched_stock"))

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
