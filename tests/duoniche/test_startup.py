"""What a process pays to start: loading the apps and the URLconf imports no LLM client."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import django
django.setup()
import duoniche.urls  # every view, admin and service module
clients = ("langchain_core", "langchain_openai", "openai")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in clients)
print(",".join(heavy[:5]) or "none")
"""


def test_loading_the_apps_imports_no_langchain_or_openai():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "duoniche.settings_test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.strip() == "none"
