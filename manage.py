#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "duoniche.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018  (load the settings: fail here, clearly)
    except ImproperlyConfigured as exc:
        # Django's command runner would swallow this and fail later with an unrelated error.
        sys.exit(
            f"ImproperlyConfigured: {exc}\n"
            "For local development run `make run` once: it starts a local PostgreSQL and writes a "
            ".env (DJANGO_DEBUG=true, a secret key, DATABASE_URL) that every manage.py reads."
        )

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
