from django.apps import AppConfig


class DuonicheConfig(AppConfig):
    name = "duoniche"
    verbose_name = "DuoNiche platform"

    def ready(self) -> None:
        from duoniche import (
            checks,  # noqa: F401  (registers the system checks)
            metrics_collector,
        )
        from duoniche.api import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from duoniche.jobs import Job, lazy_body, register_job

        metrics_collector.install()  # the business gauges, computed when Prometheus scrapes
        register_job(
            Job(
                name="job_runs_prune",
                body=lazy_body("duoniche.job_runs.job_runs_prune"),
                task="duoniche.job_runs_prune",
                soft_time_limit=240,
                time_limit=280,
                # Weekly (a crontab job's period is the ISO week): Monday 03:30 UTC.
                cron={"minute": "30", "hour": "3", "day_of_week": "mon"},
                description="delete job runs older than JOB_RUN_RETENTION_DAYS",
            )
        )
