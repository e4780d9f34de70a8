"""The Redis cache backend against the real Redis: Django's semantics, one client per pool."""

from __future__ import annotations

import threading
import time
import uuid

from django.conf import settings
from django.core.cache import caches

from duoniche.cache import RedisCache


def redis_cache() -> RedisCache:
    cache = caches.create_connection("default")
    assert isinstance(cache, RedisCache)
    return cache


def test_the_configured_cache_is_ours():
    assert settings.CACHES["default"]["BACKEND"] == "duoniche.cache.RedisCache"


def test_calls_share_one_client_instead_of_building_one_each():
    cache = redis_cache()

    first = cache._cache.get_client(write=True)

    assert cache._cache.get_client(write=True) is first
    assert cache._cache.get_client("any-key") is first  # one server: reads use the same pool


def test_add_get_set_delete_behave_as_djangos_backend():
    cache = redis_cache()
    key = f"test:{uuid.uuid4().hex}"

    assert cache.add(key, {"is_correct": True}, 30) is True
    assert cache.add(key, "other", 30) is False  # only the first add wins
    assert cache.get(key) == {"is_correct": True}
    cache.set(key, [1, 2], 30)
    assert cache.get(key) == [1, 2]
    cache.delete(key)
    assert cache.get(key, "gone") == "gone"


def test_threads_can_use_the_shared_client_at_once():
    cache = redis_cache()
    prefix = f"test:{uuid.uuid4().hex}"
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                cache.set(f"{prefix}:{n}:{i}", n * 1000 + i, 30)
                assert cache.get(f"{prefix}:{n}:{i}") == n * 1000 + i
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert cache.get_many([f"{prefix}:{n}:49" for n in range(8)]) == {
        f"{prefix}:{n}:49": n * 1000 + 49 for n in range(8)
    }


def test_an_unreachable_redis_answers_as_an_empty_cache_and_warns_once(caplog):
    from tests.fakes.servers import free_port

    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", {})

    with caplog.at_level("WARNING", logger="duoniche.cache"):
        assert cache.get("k", "default") == "default"
        assert cache.add("k", "v", 30) is True  # "free, proceed": a claim never waits for nobody
        cache.set("k", "v", 30)
        assert cache.get_many(["k"]) == {}
        assert cache.delete("k") is False
        assert cache.has_key("k") is False

    assert cache._cache.is_skipping
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert len(caplog.records) == 1


def test_the_cache_recovers_when_redis_comes_back(settings):
    from tests.fakes.servers import RedisServer

    settings.REDIS_OUTAGE_RETRY_SECONDS = 0.1
    server = RedisServer()
    cache = RedisCache(server.url, {})
    try:
        assert cache.add("k", "first", 30) is True  # nothing listens yet
        server.start()
        time.sleep(0.15)
        assert cache.add("k", "first", 30) is True
        assert cache.add("k", "second", 30) is False  # the claim holds again
        assert cache.get("k") == "first"
    finally:
        server.cleanup()
