"""Two-factor sign-in in a real browser, as a support member whose group requires it.

The member signs in with the password and lands on the set-up page (screenshot
"two_factor_setup"), types the key shown under the QR code into "the app" (the test computes the
code from it as an authenticator would), and reaches the admin. Signed out, they sign in again
with password and code (screenshot "two_factor_login"). Then wrong codes pause the account
(screenshot "two_factor_lockout").
"""

from __future__ import annotations

from base64 import b32decode
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django_otp.oath import totp

from tests.browser import BROWSER_MARKS, PASSWORD, click_through, screenshot

pytestmark = BROWSER_MARKS


@pytest.fixture
def member(settings) -> User:
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.STAFF_TWO_FACTOR_GROUPS = ["support"]
    settings.AXES_FAILURE_LIMIT = 3
    user = User.objects.create_user("helper", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="support")[0])
    return user


def fill_login(driver: Any, base_url: str, password: str, code: str = "") -> None:
    from selenium.webdriver.common.by import By

    driver.get(base_url + reverse("admin:login"))
    driver.find_element(By.ID, "id_username").send_keys("helper")
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.ID, "id_otp_token").send_keys(code)


def sign_out(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "#logout-form button").click()
    driver.find_element(By.LINK_TEXT, "Log in again")  # waits until the sign-out has happened


def test_a_support_member_sets_up_two_factor_and_signs_in_with_a_code(live_server, browser, member):
    from selenium.webdriver.common.by import By

    driver = browser
    fill_login(driver, live_server.url, PASSWORD)
    click_through(driver, "input[type=submit]")
    assert driver.current_url.endswith(reverse("two_factor"))  # the group requires it
    assert driver.find_element(By.CSS_SELECTOR, ".two-factor-qr svg").is_displayed()
    screenshot(driver, "two_factor_setup")

    key = b32decode(driver.find_element(By.ID, "two-factor-key").text.replace(" ", ""))
    driver.find_element(By.ID, "id_code").send_keys(f"{totp(key):06d}")
    click_through(driver, "input[type=submit].default")
    assert "Two-factor sign-in is on" in driver.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert driver.current_url.endswith(reverse("admin:index"))  # past the set-up page

    sign_out(driver)
    fill_login(driver, live_server.url, PASSWORD, f"{totp(key, drift=1):06d}")
    screenshot(driver, "two_factor_login")
    click_through(driver, "input[type=submit]")
    assert "HELPER" in driver.find_element(By.ID, "user-tools").text.upper()
    assert driver.current_url.endswith(reverse("admin:index"))

    sign_out(driver)
    for _ in range(3):
        fill_login(driver, live_server.url, PASSWORD, "000000")
        click_through(driver, "input[type=submit]")
    assert "Sign-in paused" in driver.find_element(By.TAG_NAME, "h1").text
    screenshot(driver, "two_factor_lockout")
