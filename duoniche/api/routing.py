"""Bot API routes: each canonical path is also served with the other trailing-slash form.

No redirect (Fix: the previous service's 307 broke PUT/POST clients). The schema lists canonical
paths only. Path parameters are captured as raw segments so the views validate them (422).
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, re_path

API_PREFIX = "api/v1/"
CANONICAL_PATHS: set[str] = set()
#: The canonical path of each API route name (both slash forms), the `handler` metric label.
CANONICAL_PATH_BY_NAME: dict[str, str] = {}

_PARAMETER = re.compile(r"{(\w+)}")


def api_route(route: str, view: Any, *, name: str) -> list[URLPattern]:
    """Routes for `route` (e.g. `users/{user_id}`) under /api/v1/, with and without the slash."""
    canonical = f"/{API_PREFIX}{route}"
    CANONICAL_PATHS.add(canonical)
    CANONICAL_PATH_BY_NAME[name] = CANONICAL_PATH_BY_NAME[f"{name}-alt"] = canonical
    body = _PARAMETER.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", route.rstrip("/"))
    slash, other = ("/", "") if route.endswith("/") else ("", "/")
    return [
        re_path(rf"^{API_PREFIX}{body}{slash}$", view, name=name),
        re_path(rf"^{API_PREFIX}{body}{other}$", view, name=f"{name}-alt"),
    ]


def keep_canonical_paths(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """drf-spectacular preprocessing hook: publish each endpoint once, under its canonical path."""
    return [
        endpoint
        for endpoint in endpoints
        if not endpoint[0].startswith(f"/{API_PREFIX}") or endpoint[0] in CANONICAL_PATHS
    ]
