"""ensure_admin gives a fresh instance one superuser, once."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_ensure_admin_creates_the_superuser_once(settings):
    settings.DJANGO_SUPERUSER_USERNAME = "boss"
    settings.DJANGO_SUPERUSER_PASSWORD = "s3cret-pass"
    out = StringIO()

    call_command("ensure_admin", stdout=out)
    call_command("ensure_admin", stdout=out)

    users = get_user_model().objects.filter(is_superuser=True)
    assert [user.username for user in users] == ["boss"]
    assert users[0].check_password("s3cret-pass")
    assert "Created superuser 'boss'" in out.getvalue()
    assert "already exists" in out.getvalue()
    assert "s3cret-pass" not in out.getvalue()  # shown only in debug


def test_ensure_admin_needs_a_password_outside_debug(settings):
    settings.DJANGO_SUPERUSER_PASSWORD = ""

    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        call_command("ensure_admin", stdout=StringIO())
    assert not get_user_model().objects.exists()
