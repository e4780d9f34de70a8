"""Job locks are exclusive per job; job runs are unique per period unless forced."""

import pytest
from django.db import IntegrityError, transaction

from duoniche.models import JobRun
from tests.duoniche.factories import JobLockFactory, JobRunFactory, LLMCallFactory

pytestmark = pytest.mark.django_db


def test_one_lock_per_job():
    lock = JobLockFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        JobLockFactory(name=lock.name)


def test_one_unforced_run_per_job_and_period():
    run = JobRunFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        JobRunFactory(job=run.job, period_key=run.period_key)


def test_forced_runs_may_repeat_a_period():
    run = JobRunFactory()

    JobRunFactory(job=run.job, period_key=run.period_key, forced=True)
    JobRunFactory(job=run.job, period_key=run.period_key, forced=True)

    assert JobRun.objects.filter(job=run.job, period_key=run.period_key).count() == 3


def test_llm_call_ledger_row_defaults():
    call = LLMCallFactory()

    assert call.attempt_no == 1
    assert call.cost_usd is None
    assert call.created_at.tzinfo is not None
