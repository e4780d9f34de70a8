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

        metrics_collector.install()  # the business gauges, computed when Prometheus scrapes
