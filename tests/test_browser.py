"""The moderation flow in a real browser: headless Chromium driven by Selenium over a live server.

A moderator signs in, opens the review queue (the exercise changelist), opens an exercise waiting
in `pending_review`, edits one of its options on the exercise page and saves, which publishes it
(the moderation console's edit service), and sees it leave the queue. A screenshot of the exercise
page is written under /tmp/duoniche-test-output/ (tests/browser.py has the shared parts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from exercises.models import Exercise
from tests.browser import BROWSER_MARKS, chromium, screenshot, sign_in, staff_member
from tests.exercises.factories import ExerciseFactory

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def moderator(settings) -> User:
    return staff_member(settings, "moderator")


def queue_ids(driver) -> set[int]:
    """The exercise ids listed on the current changelist page."""
    from selenium.webdriver.common.by import By

    ids = set()
    for box in driver.find_elements(By.CSS_SELECTOR, "#result_list input.action-select"):
        ids.add(int(box.get_attribute("value")))
    return ids


def test_a_moderator_edits_an_option_and_the_exercise_leaves_the_queue(
    live_server, browser, moderator
):
    from selenium.webdriver.common.by import By

    exercise = ExerciseFactory(
        status="pending_review",
        data={"text_with_blanks": "Искам ___ кафе, моля.", "words": ["едно", "една"]},
    )
    other = ExerciseFactory(status="pending_review")
    driver = browser

    sign_in(driver, live_server.url, moderator)

    # The queue lists both exercises waiting for review.
    queue = live_server.url + reverse("admin:exercises_exercise_changelist")
    driver.get(queue)
    assert {exercise.pk, other.pk} <= queue_ids(driver)

    # Open the exercise and change its second option.
    change = reverse("admin:exercises_exercise_change", args=[exercise.pk])
    driver.find_element(By.CSS_SELECTOR, f'#result_list a[href="{change}"]').click()
    assert driver.current_url.endswith(change)
    data = driver.find_element(By.NAME, "data")
    edited = {"text_with_blanks": "Искам ___ кафе, моля.", "words": ["едно", "един"]}
    data.clear()
    data.send_keys(json.dumps(edited, ensure_ascii=False))
    page = screenshot(driver, "exercise_page")

    # Save: the edit service publishes the exercise.
    driver.find_element(By.NAME, "_save").click()
    messages = driver.find_element(By.CSS_SELECTOR, "ul.messagelist")
    assert messages.find_elements(By.CSS_SELECTOR, "li.success"), messages.text
    assert not messages.find_elements(By.CSS_SELECTOR, "li.error"), messages.text

    exercise.refresh_from_db()
    assert exercise.status == "published"
    assert exercise.data["words"] == ["едно", "един"]
    assert exercise.reviews.filter(source="staff", new_status="published").exists()

    # Back on the queue, it is gone; the other one still waits.
    driver.get(queue)
    listed = queue_ids(driver)
    assert exercise.pk not in listed
    assert other.pk in listed
    assert Exercise.objects.get(pk=other.pk).status == "pending_review"
    assert page.stat().st_size > 10_000
