"""Create the local superuser for development, so a fresh `make run` can log into the admin."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create a superuser from DJANGO_SUPERUSER_USERNAME / _PASSWORD / _EMAIL if none exists "
        "(admin / admin in debug), and print how to log in."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = settings.DJANGO_SUPERUSER_USERNAME
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser already exists; nothing to do.")
            return
        password = settings.DJANGO_SUPERUSER_PASSWORD
        if not password:
            raise CommandError("Set DJANGO_SUPERUSER_PASSWORD: outside debug there is no default.")
        User.objects.create_superuser(
            username=username, email=settings.DJANGO_SUPERUSER_EMAIL, password=password
        )
        shown_password = password if settings.DEBUG else "<DJANGO_SUPERUSER_PASSWORD>"
        self.stdout.write(
            self.style.SUCCESS(
                f"Created superuser {username!r}. Log in at {settings.PUBLIC_BASE_URL}/admin/ "
                f"with {username} / {shown_password}."
            )
        )
