"""The operations pages in a real browser: the dashboard on the admin index, and Run now.

A superuser signs in, sees the dashboard (screenshot "dashboard"), opens the job runs, presses
"Run refill_stock now" and reads that it was queued for a worker (screenshot "job_run_now"); the
task message is on the real Redis broker and nothing ran inside the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse

from duoniche.models import JobRun
from tests.browser import BROWSER_MARKS, PASSWORD, click_through, screenshot, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def operator(settings) -> User:
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return User.objects.create_superuser("operator", password=PASSWORD)


@pytest.fixture
def broker(monkeypatch) -> Iterator[redis.Redis]:
    # Keys of the Django namespace win over the plain ones (duoniche/celery.py `_override`).
    monkeypatch.setitem(current_app.conf, "CELERY_TASK_ALWAYS_EAGER", False)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    yield client
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)


def test_an_operator_sees_the_dashboard_and_runs_a_job_now(live_server, browser, operator, broker):
    from selenium.webdriver.common.by import By

    driver = browser
    sign_in(driver, live_server.url, operator)
    driver.get(live_server.url + reverse("admin:index"))
    driver.set_window_size(1280, 900)
    # The key figures and the app list share the first screen (the list is the right column).
    assert driver.find_element(By.ID, "dashboard-today").location["y"] < 900
    assert driver.find_element(By.CSS_SELECTOR, ".app-exercises").location["y"] < 900
    # Nothing happened yet: the empty charts collapse to one line each.
    assert "No answers in the last 30 days" in driver.find_element(By.ID, "dashboard-activity").text
    assert not driver.find_elements(By.CSS_SELECTOR, "#dashboard-activity svg")
    assert screenshot(driver, "dashboard").stat().st_size > 10_000

    driver.get(live_server.url + reverse("admin:duoniche_jobrun_changelist"))
    click_through(driver, 'button[value="refill_stock"]')

    message = driver.find_element(By.CSS_SELECTOR, "ul.messagelist li.success").text
    assert "refill_stock is queued as a forced run" in message.lower()
    assert screenshot(driver, "job_run_now").stat().st_size > 10_000
    [raw] = [json.loads(item) for item in broker.lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1)]
    assert raw["headers"]["task"] == "exercises.refill_stock"
    assert not JobRun.objects.exists()
