"""Test overrides: PostgreSQL from TEST_DATABASE_URL, Redis, production mode with a test token.

When nothing answers at TEST_DATABASE_URL or REDIS_URL, the test run starts its own throwaway
servers (duoniche/local_servers.py) and stops them when it ends.
"""

import os
import sys

# The tests' processes read no `.env`: a developer's local file must not change what they see.
os.environ["DJANGO_ENV_FILE"] = ""
if "pytest" in sys.modules:  # the test run itself (not mypy's import, nor a worker it starts)
    from duoniche.local_servers import ensure_test_services

    ensure_test_services()
os.environ["DJANGO_DEBUG"] = "false"
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-0123456789abcdefghijklmnop")
os.environ.setdefault("API_TOKENS", "test-token")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ["DATABASE_URL"] = os.environ.get(
    "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/duoniche"
)

from duoniche.settings import *  # noqa: F403
from duoniche.settings import STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
SECURE_SSL_REDIRECT = False
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True  # no collected static files in tests
