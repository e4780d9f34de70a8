"""/healthz both ways, /metrics behind its token, and the API docs served offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_healthz_is_200_after_a_database_round_trip(client, django_assert_num_queries):
    with django_assert_num_queries(1):  # SELECT 1: no transaction, no SET per request
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok"},
        "features": {
            "llm": "disabled",
            "tts": "disabled",
            "broker": "eager",
            "language_check": "enabled",
        },
    }
    assert client.get("/healthz/").status_code == 200


def test_healthz_is_503_with_a_reason_when_the_database_is_down():
    # A real process whose database URL points at a port where nothing listens.
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='localhost').get('/healthz');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **env,
            "DJANGO_SETTINGS_MODULE": "duoniche.settings",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:1/duoniche",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503
    assert outcome["body"]["code"] == "service_unavailable"
    assert outcome["body"]["status"] == "error"
    assert outcome["body"]["checks"] == {"database": "error"}
    assert "OperationalError" in outcome["body"]["detail"]


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "scrape-me"
    client.get("/healthz")

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'http_requests_total{handler="/healthz",method="GET",status="2xx"}' in body
    assert "django_db_execute_total" in body
    assert "django_db_query_duration_seconds_bucket" in body


@pytest.mark.django_db
def test_metrics_are_open_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_api_docs_and_schema_are_served_without_a_token(client):
    docs = client.get("/api/docs/")
    schema = client.get("/api/schema/")

    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()  # bundled assets: works offline
    assert schema.status_code == 200


@pytest.mark.django_db
def test_admin_login_page_is_served(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert b"password" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1"])
def test_the_api_root_is_an_index_of_links_without_a_token(client, path):
    response = client.get(path)
    body = response.json()

    assert response.status_code == 200
    assert body["version"] == "v1"
    assert body["links"]["docs"] == "/api/docs/"
    assert body["links"]["health"] == "/healthz"
    for link in body["links"].values():
        assert client.get(link).status_code in (200, 302), link  # the admin asks for a login


def test_the_api_root_answers_only_reads(client):
    response = client.post("/api/v1/", {}, content_type="application/json")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert client.get("/api/v1/nothing-here/").json()["code"] == "not_found"


def test_admin_without_the_slash_is_redirected_but_the_api_is_not(client):
    admin = client.get("/admin")
    api = client.get("/api/v1/users/1/bots/Bulgarian/next-action", HTTP_AUTHORIZATION="Bearer x")

    assert admin.status_code == 301
    assert admin["Location"] == "/admin/"
    assert api.status_code != 301
