"""The moderation flow in a real browser: headless Chromium driven by Selenium over a live server.

A moderator signs in, opens the review queue (the exercise changelist), opens an exercise waiting
in `pending_review`, edits one of its options on the exercise page and saves, which publishes it
(the moderation console's edit service), and sees it leave the queue. A screenshot of the exercise
page is written under /tmp/duoniche-test-output/.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing); without
them the test is skipped. No network: Selenium gets both paths, so Selenium Manager never runs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from exercises.models import Exercise
from tests.exercises.factories import ExerciseFactory

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = Path("/tmp/duoniche-test-output")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--window-size=1280,1400",
)
PASSWORD = "moderate-me-7"

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium "
        "chromium-driver)",
    ),
    # Committed rows: the live server answers from its own thread and connection.
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="duoniche-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def moderator(settings) -> User:
    """A member of the "moderator" group when the migrations created it, else a superuser.

    A transactional test that ran earlier flushed the database, the group with it (the data
    migration's rows do not come back; `serialized_rollback` cannot restore them after such a
    flush), so in a full run this may be the superuser path: it says which one it took.
    """
    # The live server speaks plain HTTP; production cookies are Secure-only.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    group = Group.objects.filter(name="moderator").first()
    if group is None:
        print("\nno moderator group: driving the flow as a superuser")
        return User.objects.create_superuser("moderator", password=PASSWORD)
    user = User.objects.create_user("moderator", password=PASSWORD, is_staff=True)
    user.groups.add(group)
    assert not user.is_superuser
    print("\nsigned in as a member of the moderator group")
    return user


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

    # Sign in.
    driver.get(live_server.url + reverse("admin:login"))
    driver.find_element(By.ID, "id_username").send_keys(moderator.username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert driver.find_element(By.ID, "user-tools").text.upper().count("MODERATOR") >= 1

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
    OUTPUT.mkdir(parents=True, exist_ok=True)
    screenshot = OUTPUT / "exercise_page.png"
    assert driver.save_screenshot(str(screenshot))
    print(f"\nscreenshot of the exercise page: {screenshot}")

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
    assert screenshot.stat().st_size > 10_000
