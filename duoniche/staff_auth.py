"""Staff sign-in to the admin: the client address that repeated-failure lockout counts per.

django-axes locks out an admin login after ADMIN_LOGIN_FAILURE_LIMIT failures, counted per
username and, separately, per client address (docs/configuration.md). Behind reverse proxies the
socket's address is the last proxy's, so with TRUSTED_PROXY_COUNT = N the client is the address
the N-th proxy from us saw: the N-th entry from the right of X-Forwarded-For. Entries further left
were written by the client and are never trusted. Anything malformed falls back to the socket.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < proxies:
        return remote
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
