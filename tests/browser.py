"""Shared parts of the headless-Chromium tests (tests/test_browser*.py).

Debian's `chromium` and `chromium-driver` drive the Django admin over a live server; without them
the tests are skipped (`.ci/run` installs them). No network: Selenium gets both paths, so Selenium
Manager never runs. Screenshots go to OUTPUT, the test run's artefacts.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

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

#: The marks every browser test module sets as its `pytestmark`.
BROWSER_MARKS = [
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium "
        "chromium-driver)",
    ),
    # Committed rows: the live server answers from its own thread and connection.
    pytest.mark.django_db(transaction=True),
]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Selenium, with a throwaway profile."""
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


def staff_member(settings: Any, group_name: str = "moderator") -> User:
    """A member of `group_name` when the migrations created it, else a superuser.

    A transactional test that ran earlier flushed the database, the group with it (the data
    migration's rows do not come back; `serialized_rollback` cannot restore them after such a
    flush), so in a full run this may be the superuser path: it says which one it took.
    """
    # The live server speaks plain HTTP; production cookies are Secure-only.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    group = Group.objects.filter(name=group_name).first()
    if group is None:
        print(f"\nno {group_name} group: driving the flow as a superuser")
        return User.objects.create_superuser(group_name, password=PASSWORD)
    user = User.objects.create_user(group_name, password=PASSWORD, is_staff=True)
    user.groups.add(group)
    assert not user.is_superuser
    print(f"\nsigned in as a member of the {group_name} group")
    return user


def click_through(driver: Any, selector: str) -> None:
    """Click what `selector` finds and wait until the next page has replaced this one: reading
    the URL, or opening another page, right after a click would race the request it sends."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(page))


def sign_in(driver: Any, base_url: str, user: User) -> None:
    """Sign `user` in on the admin login page and check the admin greets them."""
    from selenium.webdriver.common.by import By

    driver.get(base_url + reverse("admin:login"))
    driver.find_element(By.ID, "id_username").send_keys(user.username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    click_through(driver, "input[type=submit]")
    assert user.username.upper() in driver.find_element(By.ID, "user-tools").text.upper()


def screenshot(driver: Any, name: str) -> Path:
    """Save a PNG of the current page as OUTPUT/name.png and return its path."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    assert driver.save_screenshot(str(path))
    print(f"\nscreenshot: {path}")
    return path
