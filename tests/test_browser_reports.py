"""Regenerating a weekly report's detailed text in a real browser (headless Chromium, Selenium).

A staff member signs in, opens a weekly report whose detailed text was written, presses
"Regenerate detailed report" and reads the message saying what happened; the job (eager under the
test settings, as a worker would run it) has written a new text. A screenshot `weekly_report` is
written under /tmp/duoniche-test-output/ (tests/browser.py has the shared parts).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from duoniche.enums import ReportStatus
from tests.browser import BROWSER_MARKS, click_through, screenshot, sign_in, staff_member
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory, ExerciseAttemptFactory, WeeklyReportFactory

pytestmark = BROWSER_MARKS


@pytest.fixture
def staff(settings) -> User:
    # No group carries the learning permissions: this drives the flow as a superuser.
    return staff_member(settings, "learning staff")


def test_staff_regenerate_a_detailed_report_and_read_what_happened(live_server, browser, staff):
    from selenium.webdriver.common.by import By

    now = timezone.now()
    profile = BotProfileFactory()
    report = WeeklyReportFactory(
        user=profile.user,
        bot_id=profile.bot_id,
        status=ReportStatus.GENERATED,
        full_report="<b>An old text</b>",
        full_generated_at=now - timedelta(hours=1),
        status_changed_at=now - timedelta(hours=1),
        generation_attempts=1,
    )
    ExerciseAttemptFactory(user=profile.user, exercise=ExerciseFactory(), is_correct=True)
    driver = browser

    sign_in(driver, live_server.url, staff)
    page = reverse("admin:learning_weeklyreport_change", args=[report.pk])
    driver.get(live_server.url + page)
    assert "An old text" in driver.find_element(By.ID, "content").text
    assert "<b>" not in driver.find_element(By.ID, "content").text  # text, not tags

    click_through(driver, "#regenerate-report-form button")

    assert driver.current_url.endswith(page)
    messages = driver.find_element(By.CSS_SELECTOR, "ul.messagelist")
    success = messages.find_elements(By.CSS_SELECTOR, "li.success")
    assert success, messages.text
    assert f"Report #{report.pk}: a new detailed report is being written" in success[0].text
    screenshot(driver, "weekly_report")
    report.refresh_from_db()
    assert report.status == ReportStatus.GENERATED
    assert report.generation_attempts == 2
    assert report.full_report != "<b>An old text</b>"
