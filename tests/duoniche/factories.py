from datetime import timedelta

import factory
from django.utils import timezone

from duoniche.enums import JobRunStatus, LLMPurpose
from duoniche.models import JobLock, JobRun, LLMCall


class LLMCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LLMCall

    purpose = LLMPurpose.VALIDATION
    operation = "validate_fill_in_the_blank"
    model = "gpt-test"
    latency_ms = 120
    ok = True


class JobLockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobLock

    name = factory.Sequence(lambda n: f"job-{n}")
    owner = "host:1:task"
    acquired_at = factory.LazyFunction(timezone.now)
    locked_until = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=5))


class JobRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobRun

    job = "refill_stock"
    period_key = factory.Sequence(lambda n: f"2026-11-26T{n % 24:02d}:{n % 60:02d}Z")
    status = JobRunStatus.RUNNING
