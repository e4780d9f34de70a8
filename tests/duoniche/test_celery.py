"""The Celery app is configured from settings: JSON only, late acks, one message at a time."""

from django.conf import settings

from duoniche.celery import app


def test_celery_app_reads_django_settings():
    conf = app.conf

    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_default_queue == "duoniche"
    assert conf.task_soft_time_limit == 300
    assert conf.task_time_limit > conf.task_soft_time_limit
    assert conf.beat_scheduler == "duoniche.beat:DuonicheScheduler"
    assert conf.broker_url == settings.REDIS_URL
