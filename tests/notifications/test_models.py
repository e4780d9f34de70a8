"""The notification log de-duplicates by key and is addressable by its Celery task id."""

import pytest
from django.db import IntegrityError, transaction

from tests.notifications.factories import NotificationLogFactory

pytestmark = pytest.mark.django_db


def test_dedupe_key_is_unique():
    log = NotificationLogFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationLogFactory(dedupe_key=log.dedupe_key)


def test_task_id_is_unique_and_generated():
    log = NotificationLogFactory()
    other = NotificationLogFactory()

    assert log.task_id != other.task_id
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationLogFactory(task_id=log.task_id)
    assert log.status == "pending"
