"""The learning app: registers its Celery task, its periodic jobs (docs/jobs.md), its dashboard
section and the answer weight the moderation queue uses."""

from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "learning"

    def ready(self) -> None:
        # The report task is published by name (report_services cannot import its own task
        # module); registering it here lets every process, eager ones included, resolve it.
        import learning.tasks  # noqa: F401
        from exercises.selectors import attempt_weight_register
        from learning.selectors import attempt_weight

        attempt_weight_register(attempt_weight)  # the moderation queue weighs answers by rating
        from duoniche.dashboard import register_section
        from learning.dashboard import dashboard_activity

        register_section(
            name="activity",
            permission="learning.view_exerciseattempt",
            build=dashboard_activity,
            order=20,
        )

        from duoniche.jobs import Job, lazy_body, register_job

        register_job(
            Job(
                name="quality_monitor",
                body=lazy_body("learning.quality.quality_monitor"),
                task="learning.quality_monitor",
                soft_time_limit=1500,
                time_limit=1800,
                interval_setting="QUALITY_MONITOR_INTERVAL_SECONDS",
                description="user ratings and review candidates",
            )
        )
        register_job(
            Job(
                name="metrics_updater",
                body=lazy_body("learning.metrics_updater.metrics_updater"),
                task="learning.metrics_updater",
                soft_time_limit=50,
                time_limit=55,
                interval_setting="UPDATE_USER_METRICS_INTERVAL",
                description="session metrics (active users, session length)",
            )
        )
        register_job(
            Job(
                name="report_generation_sweep",
                body=lazy_body("learning.report_services.report_generation_sweep"),
                task="learning.report_generation_sweep",
                soft_time_limit=50,
                time_limit=55,
                interval_setting="REPORT_GENERATION_SWEEP_INTERVAL_SECONDS",
                description="queue the detailed-report jobs a broker outage kept from being queued",
            )
        )
