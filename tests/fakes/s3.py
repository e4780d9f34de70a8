"""S3 for tests: moto's real HTTP server on a free loopback port, and Django storage pointed at it.

`s3_storage` sets the `AWS_*` settings the way production does (R2-style: region `auto`, an
explicit endpoint, no ACLs, no overwrite, unsigned URLs) and switches `STORAGES["default"]` to
django-storages' S3 backend. Overriding `STORAGES` makes Django 5.2 drop its cached backends
(`django.test.signals.storages_changed`), so `default_storage` is rebuilt from these settings, and
rebuilt again from the restored ones after the test.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

S3_BACKEND = "storages.backends.s3.S3Storage"
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-never-logged"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3 (and friends) on 127.0.0.1, a free port; its base URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class S3Bucket:
    endpoint_url: str
    name: str
    client: Any

    def keys(self) -> list[str]:
        response = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def head(self, key: str) -> dict[str, Any]:
        return dict(self.client.head_object(Bucket=self.name, Key=key))

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


@pytest.fixture
def s3_storage(settings, moto_server: str) -> S3Bucket:
    """A fresh bucket, and `default_storage` = S3Storage on it (settings-driven, as in prod)."""
    name = f"duoniche-{uuid.uuid4().hex[:12]}"
    # moto refuses to create a bucket in region "auto"; objects are then reached from "auto".
    boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ).create_bucket(Bucket=name)
    settings.AWS_ACCESS_KEY_ID = ACCESS_KEY
    settings.AWS_SECRET_ACCESS_KEY = SECRET_KEY
    settings.AWS_STORAGE_BUCKET_NAME = name
    settings.AWS_S3_ENDPOINT_URL = moto_server
    settings.AWS_S3_REGION_NAME = "auto"
    settings.AWS_S3_SIGNATURE_VERSION = "s3v4"
    settings.AWS_S3_CUSTOM_DOMAIN = None
    settings.AWS_LOCATION = ""
    settings.CLOUDFLARE_R2_PUBLIC_URL_PREFIX = ""
    # Last: this resets Django's storage handler, after every AWS_* value is in place.
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": S3_BACKEND}}
    client = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="auto",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    return S3Bucket(endpoint_url=moto_server, name=name, client=client)
