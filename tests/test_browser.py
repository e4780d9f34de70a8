"""The moderation flow in a real browser: headless Chromium driven by Selenium over a live server.

A moderator signs in, opens the review queue (the exercise changelist), opens the first exercise
waiting in `pending_review`, edits one of its words in the word's own field and saves, which
publishes it (the moderation console's edit service) and opens the next exercise of the queue;
archiving that one, the last, leads back to the queue, which says it is empty. Screenshots of the
queue and of the exercise page are written under /tmp/duoniche-test-output/ (tests/browser.py has
the shared parts).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from exercises.models import Exercise
from tests.browser import BROWSER_MARKS, click_through, screenshot, sign_in, staff_member
from tests.exercises.factories import ExerciseFactory

pytestmark = BROWSER_MARKS


@pytest.fixture
def moderator(settings) -> User:
    return staff_member(settings, "moderator")


def queue_ids(driver) -> list[int]:
    """The exercise ids listed on the current changelist page, in order."""
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, "#result_list input.action-select")
    return [int(box.get_attribute("value")) for box in boxes]


def test_a_moderator_works_through_the_queue_until_it_is_empty(live_server, browser, moderator):
    from selenium.webdriver.common.by import By

    exercise = ExerciseFactory(
        status="pending_review",
        data={"text_with_blanks": "Искам ___ кафе, моля.", "words": ["едно", "една"]},
    )
    other = ExerciseFactory(status="pending_review")
    now = timezone.now()  # the queue lists the newest status change first: `exercise`, then `other`
    Exercise.objects.filter(pk=exercise.pk).update(status_changed_at=now - timedelta(hours=1))
    Exercise.objects.filter(pk=other.pk).update(status_changed_at=now - timedelta(hours=2))
    driver = browser

    sign_in(driver, live_server.url, moderator)

    # The queue lists both exercises waiting for review.
    queue = live_server.url + reverse("admin:exercises_exercise_changelist")
    driver.get(queue)
    assert queue_ids(driver) == [exercise.pk, other.pk]
    assert screenshot(driver, "queue").stat().st_size > 10_000

    # Open the exercise and change its second word in its own field (no JSON to edit).
    change = reverse("admin:exercises_exercise_change", args=[exercise.pk])
    click_through(driver, f'#result_list a[href="{change}"]')
    assert driver.current_url.endswith(change)
    assert not driver.find_elements(By.NAME, "data")
    sentence = driver.find_element(By.NAME, "sentence")
    assert sentence.get_attribute("value") == "Искам ___ кафе, моля."
    word = driver.find_element(By.NAME, "word_2")
    word.clear()
    word.send_keys("един")
    # Only the decisions that change its status: it already waits for the LLM review.
    offered = [
        button.get_attribute("value")
        for button in driver.find_elements(By.CSS_SELECTOR, 'button[name="decide"]')
    ]
    assert offered == ["publish", "archive", "admin_review"]
    page = screenshot(driver, "exercise_page")

    # Save and publish: the edit service publishes it, and the next exercise of the queue opens.
    click_through(driver, 'input[name="_save"]')
    messages = driver.find_element(By.CSS_SELECTOR, "ul.messagelist")
    assert messages.find_elements(By.CSS_SELECTOR, "li.success"), messages.text
    assert not messages.find_elements(By.CSS_SELECTOR, "li.error"), messages.text
    next_change = reverse("admin:exercises_exercise_change", args=[other.pk])
    assert driver.current_url.split("?")[0].endswith(next_change)

    exercise.refresh_from_db()
    assert exercise.status == "published"
    assert exercise.data["words"] == ["едно", "един"]
    assert exercise.reviews.filter(source="staff", new_status="published").exists()

    # Archive the last one: back on the queue, which says it is empty.
    click_through(driver, 'button[name="decide"][value="archive"]')
    assert driver.current_url.split("?")[0] == queue
    assert "The queue is empty." in driver.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert "The queue is empty." in driver.find_element(By.CSS_SELECTOR, ".queue-empty").text
    assert queue_ids(driver) == []
    assert Exercise.objects.get(pk=other.pk).status == "archived"
    assert page.stat().st_size > 10_000
