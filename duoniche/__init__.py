from duoniche import metrics_files

metrics_files.install()  # first: before any Prometheus metric exists in this process

from duoniche.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
