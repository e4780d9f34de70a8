"""The previous service's HTTP metric names at `/metrics` (docs/api.md, issue 10 #14).

`handler` is the canonical route template whatever slash form was called; unmatched paths count
under `handler="none"`; every label comes from a closed set.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}


def scrape(client, settings) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    settings.METRICS_TOKEN = ""
    text = client.get("/metrics").content.decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_requests_are_counted_by_canonical_handler_method_and_status_group(client, settings):
    before = scrape(client, settings)
    handler = "/api/v1/users/{user_id}"
    client.get("/api/v1/users/12345", **AUTH)  # 404 unknown user (other slash form: same handler)
    client.get("/api/v1/users/12345/", **AUTH)
    client.get("/api/v1/no/such/thing", **AUTH)
    client.get("/not-a-route-at-all")
    client.get("/healthz")

    after = scrape(client, settings)

    counted = "http_requests_total"
    delta = value(after, counted, handler=handler, method="GET", status="4xx") - value(
        before, counted, handler=handler, method="GET", status="4xx"
    )
    assert delta == 2
    none_delta = value(after, counted, handler="none", method="GET", status="4xx") - value(
        before, counted, handler="none", method="GET", status="4xx"
    )
    assert none_delta == 2
    assert value(after, counted, handler="/healthz", method="GET", status="2xx") >= 1
    handlers = {dict(key)["handler"] for key in after[counted]}
    assert not any("12345" in h or "no/such" in h or "not-a-route" in h for h in handlers)
    statuses = {dict(key)["status"] for key in after[counted]}
    assert statuses <= {"1xx", "2xx", "3xx", "4xx", "5xx"}

    duration = "http_request_duration_seconds_count"
    assert (
        value(after, duration, handler=handler, method="GET")
        - value(before, duration, handler=handler, method="GET")
        == 2
    )
    assert (
        value(after, "http_request_duration_highr_seconds_count")
        - value(before, "http_request_duration_highr_seconds_count")
        >= 5
    )
    assert "http_request_duration_highr_seconds_bucket" in after
    assert (
        value(after, "http_request_size_bytes_count", handler=handler)
        - value(before, "http_request_size_bytes_count", handler=handler)
        == 2
    )
    assert value(after, "http_response_size_bytes_sum", handler=handler) > value(
        before, "http_response_size_bytes_sum", handler=handler
    )


def test_an_odd_method_is_not_a_new_label(client, settings):
    client.generic("FROBNICATE", "/healthz")
    samples = scrape(client, settings)
    methods = {dict(key)["method"] for key in samples["http_requests_total"]}
    assert "FROBNICATE" not in methods
    assert "other" in methods


def test_request_size_is_recorded(client, settings):
    before = scrape(client, settings)
    body = '{"telegram_id": "1", "username": null, "name": null, "target_language": "Bulgarian"}'
    client.put("/api/v1/users/", body, content_type="application/json", **AUTH)
    after = scrape(client, settings)
    name = "http_request_size_bytes_sum"
    assert value(after, name, handler="/api/v1/users/") - value(
        before, name, handler="/api/v1/users/"
    ) == len(body)


def test_multiprocess_mode_aggregates_the_http_metrics(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR set, `/metrics` shows what each process recorded."""
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from django.test import Client
        Client(HTTP_HOST="localhost").get("/no-such-path")
        Client(HTTP_HOST="localhost").get("/no-such-path/either")
        print(Client(HTTP_HOST="localhost").get("/metrics").content.decode())
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "duoniche.settings_test",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "METRICS_TOKEN": "",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert 'http_requests_total{handler="none",method="GET",status="4xx"} 2.0' in result.stdout
    assert "http_request_duration_highr_seconds_count 2.0" in result.stdout
    assert list(tmp_path.iterdir())  # the samples went through the multiprocess files
