"""The notifications app: registers its periodic jobs (docs/jobs.md)."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from duoniche.dashboard import register_section
        from notifications.dashboard import dashboard_notifications

        register_section(
            name="notifications",
            permission="notifications.view_notificationlog",
            build=dashboard_notifications,
            order=50,
        )

        from duoniche.jobs import Job, lazy_body, register_job

        register_job(
            Job(
                name="notification_scheduler",
                body=lazy_body("notifications.scheduler.notification_scheduler"),
                task="notifications.notification_scheduler",
                soft_time_limit=240,
                time_limit=280,
                interval_setting="NOTIFICATION_SCHEDULER_INTERVAL_SECONDS",
                description="session and long-break reminders, report deliveries",
            )
        )
        register_job(
            Job(
                name="weekly_reports",
                body=lazy_body("notifications.weekly.weekly_reports"),
                task="notifications.weekly_reports",
                soft_time_limit=3000,
                time_limit=3600,
                # Monday 09:00 UTC plus safety re-fires (skipped_period after a success that week).
                cron={"minute": "0", "hour": "9,10,11,12", "day_of_week": "mon"},
                description="Monday short weekly reports and their notifications",
            )
        )
