"""Story audio: real Cloud TTS client, real S3 backend, real Bot API client, all against loopback
fakes (TTS REST fake, moto server, fake Telegram); see docs/jobs.md."""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connections, transaction
from django.utils import timezone

from duoniche import telegram
from duoniche.enums import ExerciseStatus, ExerciseType
from duoniche.languages import latin_to_cyrillic
from exercises.audio import (
    TTS_COOLDOWN_CACHE_KEY,
    AudioFailed,
    StoryAudio,
    audio_pipeline_ready,
    story_audio_discard,
    story_audio_produce,
    story_repair_one,
    tts_cooldown_active,
    tts_failure_note,
)
from exercises.models import Exercise
from exercises.services import stale_repairs_reset
from tests.exercises.factories import ExerciseFactory

if TYPE_CHECKING:
    from tests.fakes.s3 import S3Bucket
    from tests.fakes.telegram_server import FakeTelegram
    from tests.fakes.tts_server import FakeTTS

# The fakes' fixtures (imported as plugins, not modules, so pytest owns their import).
pytest_plugins = ["tests.fakes.s3", "tests.fakes.telegram_server", "tests.fakes.tts_server"]

pytestmark = pytest.mark.django_db

KEY_PATTERN = r"{bot}/story_audio/{level}/{topic}/(?P<hex>[0-9a-f]{{32}})\.ogg"
BULGARIAN_STORY = "Мария отиде на пазара и купи домати, сирене и хляб за вечеря."
SERBIAN_STORY = "Marko je kupio hleb i mleko. Ljubica je čekala njega kod pijace."
#: What the TTS fake synthesises and the Telegram fake's tokens (tests/fakes/*).
FAKE_OGG = b"OggS\x00\x02fake-opus-audio"
BULGARIAN_TOKEN = "111111:bulgarian-voice-secret"
SERBIAN_TOKEN = "222222:serbian-voice-secret"
UPLOAD_CHAT_ID = "-1001234567890"
S3_SECRET_KEY = "test-secret-key-never-logged"
S3_BACKEND = "storages.backends.s3.S3Storage"
_stories = itertools.count(1)


@pytest.fixture
def audio_env(fake_tts: FakeTTS, fake_telegram_voice: FakeTelegram, s3_storage: S3Bucket):
    """The whole pipeline configured: TTS fake, Telegram fake, S3 (moto)."""
    return fake_tts, fake_telegram_voice, s3_storage


def _produce(bot_id: str = "Bulgarian", **overrides: Any) -> StoryAudio:
    kwargs: dict[str, Any] = {
        "bot_id": bot_id,
        "text": BULGARIAN_STORY if bot_id == "Bulgarian" else SERBIAN_STORY,
        "persona": None,
        "level": "A2",
        "topic": "food",
        **overrides,
    }
    return story_audio_produce(**kwargs)


def _broken_story(
    bot_id: str = "Bulgarian", *, persona: str | None = None, **fields: Any
) -> Exercise:
    n = next(_stories)
    return ExerciseFactory(
        exercise_type=ExerciseType.STORY_COMPREHENSION,
        exercise_language=bot_id,
        status=fields.pop("status", ExerciseStatus.AUDIO_GENERATION_ERROR),
        persona=persona,
        data={
            "content_text": f"{BULGARIAN_STORY} История {n}.",
            "audio_url": "",
            "audio_telegram_file_id": "",
            "options": [f"Мария купи хляб {n}.", "Мария купи риба.", "Мария не отиде."],
        },
        **fields,
    )


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


# --- Producing audio -----------------------------------------------------------------------------


def test_produce_synthesises_stores_and_uploads(audio_env) -> None:
    tts, tg, bucket = audio_env

    audio = _produce()

    match = re.fullmatch(KEY_PATTERN.format(bot="Bulgarian", level="A2", topic="food"), audio.key)
    assert match is not None
    assert uuid.UUID(match["hex"]).version == 4
    assert audio.file_id == "voice-file-1"
    assert audio.url == f"{bucket.endpoint_url}/{bucket.name}/{audio.key}"
    assert bucket.keys() == [audio.key]
    assert bucket.head(audio.key)["ContentType"] == "audio/ogg"
    assert bucket.read(audio.key) == FAKE_OGG
    # TTS: OGG/Opus at 48 kHz in the language's locale, the default voice without a persona.
    [request] = tts.syntheses
    assert request["input"] == {"text": BULGARIAN_STORY}
    assert request["voice"] == {"languageCode": "bg-BG", "name": "bg-BG-Standard-A"}
    assert request["audioConfig"] == {
        "audioEncoding": "OGG_OPUS",
        "sampleRateHertz": 48000,
        "speakingRate": 1.0,
    }
    # Telegram: multipart sendVoice with the story bot's token to the upload chat.
    [upload] = tg.uploads
    assert upload.token == BULGARIAN_TOKEN
    assert upload.content_type.startswith("multipart/form-data; boundary=")
    assert upload.fields == {"chat_id": UPLOAD_CHAT_ID}
    voice = upload.files["voice"]
    assert (voice.filename, voice.content_type, voice.content) == (
        "audio.ogg",
        "audio/ogg",
        FAKE_OGG,
    )


def test_two_stories_in_the_same_second_get_their_own_keys(audio_env) -> None:
    """Same bot, level and topic at once -> two keys, two objects."""
    _tts, _tg, bucket = audio_env

    first = _produce()
    second = _produce()

    assert first.key != second.key
    # Our own uuid4 keys, not the backend's de-duplication suffix on a colliding name.
    pattern = KEY_PATTERN.format(bot="Bulgarian", level="A2", topic="food")
    assert all(re.fullmatch(pattern, audio.key) for audio in (first, second))
    assert bucket.keys() == sorted([first.key, second.key])
    assert first.url != second.url


def test_serbian_is_synthesised_from_cyrillic(audio_env) -> None:
    tts, tg, _bucket = audio_env

    _produce("Serbian", level="B1", topic="shopping")

    [request] = tts.syntheses
    spoken = request["input"]["text"]
    assert spoken == latin_to_cyrillic(SERBIAN_STORY)
    assert spoken.startswith("Марко је купио хлеб")
    assert "Љубица" in spoken
    assert request["voice"] == {"languageCode": "sr-RS", "name": "sr-RS-Standard-A"}
    assert [upload.token for upload in tg.uploads] == [SERBIAN_TOKEN]


@pytest.mark.parametrize(
    ("persona", "offered", "voice", "rate", "pitch"),
    [
        # The preferred voice exists for the locale: Chirp3-HD, which takes no pitch.
        ("Embarrassed Tourist", ["bg-BG-Chirp3-HD-Puck"], "bg-BG-Chirp3-HD-Puck", 0.92, None),
        # It doesn't: the language's default voice, with the persona's rate and pitch.
        ("Suspicious Pensioner", ["bg-BG-Chirp3-HD-Puck"], "bg-BG-Standard-A", 0.9, -2.0),
        # "(language default)" voice.
        ("Friendly Barista", ["bg-BG-Chirp3-HD-Leda"], "bg-BG-Standard-A", 1.08, 2.0),
        # No persona: the previous defaults Leda / Enceladus are tried the same way.
        (None, ["bg-BG-Chirp3-HD-Leda"], "bg-BG-Chirp3-HD-Leda", 1.0, None),
    ],
)
def test_persona_voice_rate_and_pitch(
    audio_env, persona: str | None, offered: list[str], voice: str, rate: float, pitch: Any
) -> None:
    tts, _tg, _bucket = audio_env
    tts.voices = {"bg-BG": [*offered, "bg-BG-Standard-A"]}

    _produce(persona=persona)

    [request] = tts.syntheses
    assert request["voice"] == {"languageCode": "bg-BG", "name": voice}
    assert request["audioConfig"]["speakingRate"] == rate
    assert request["audioConfig"].get("pitch") == pitch


def test_voice_list_is_looked_up_once_and_cached(audio_env) -> None:
    tts, _tg, _bucket = audio_env
    tts.voices = {"bg-BG": ["bg-BG-Chirp3-HD-Puck"]}

    _produce(persona="Embarrassed Tourist")
    _produce(persona="Embarrassed Tourist")

    assert len(tts.voice_lookups) == 1
    assert tts.voice_lookups[0].query["languageCode"] == ["bg-BG"]
    assert [r["voice"]["name"] for r in tts.syntheses] == ["bg-BG-Chirp3-HD-Puck"] * 2


def test_tts_voices_json_overrides_the_default_voices(audio_env, settings) -> None:
    tts, _tg, _bucket = audio_env
    settings.TTS_VOICES_JSON = {"Bulgarian": ["bg-BG-Wavenet-B"]}

    _produce(persona="Friendly Barista")

    assert tts.syntheses[0]["voice"]["name"] == "bg-BG-Wavenet-B"


def test_a_refused_style_is_retried_once_without_it(audio_env) -> None:
    tts, tg, _bucket = audio_env
    tts.fail(400, "pitch is not supported for this voice")

    audio = _produce(persona="Suspicious Pensioner")

    styled, plain = tts.syntheses
    assert (styled["audioConfig"]["speakingRate"], styled["audioConfig"]["pitch"]) == (0.9, -2.0)
    assert plain["audioConfig"]["speakingRate"] == 1.0
    assert "pitch" not in plain["audioConfig"]
    assert audio.file_id == "voice-file-1"
    assert len(tg.uploads) == 1


@pytest.mark.parametrize("status", [500, 429])
def test_tts_failure_is_a_synthesis_failure_and_stores_nothing(audio_env, status: int) -> None:
    tts, tg, bucket = audio_env
    tts.fail(status)

    with pytest.raises(AudioFailed) as failed:
        _produce()

    assert failed.value.synthesis_failed is True
    assert failed.value.reason.startswith("synthesis failed")
    assert len(tts.syntheses) == 1  # no retry inside one production
    assert bucket.keys() == []
    assert tg.uploads == []


def test_empty_audio_is_a_synthesis_failure(audio_env) -> None:
    tts, tg, bucket = audio_env
    tts.audio = b""

    with pytest.raises(AudioFailed) as failed:
        _produce()

    assert failed.value.synthesis_failed is True
    assert bucket.keys() == []
    assert tg.uploads == []


def test_a_story_too_long_for_tts_is_refused_before_calling_it(audio_env) -> None:
    tts, _tg, bucket = audio_env

    with pytest.raises(AudioFailed) as failed:
        _produce(text="дума " * 540)  # 4860 bytes

    assert failed.value.synthesis_failed is False  # the story's fault: no TTS cooldown
    assert tts.requests == []
    assert bucket.keys() == []


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}),
        # Stored as a document, not a voice: no voice file id.
        (200, {"ok": True, "result": {"message_id": 1, "document": {"file_id": "doc-1"}}}),
    ],
)
def test_telegram_failure_deletes_the_object(audio_env, answer: tuple[int, Any]) -> None:
    _tts, tg, bucket = audio_env
    status, body = answer
    # A 5xx is retried (duoniche.telegram's policy): it answers every try.
    tries = telegram.ATTEMPTS if status >= 500 else 1
    for _ in range(tries):
        tg.reply("sendVoice", body, status=status)

    with pytest.raises(AudioFailed) as failed:
        _produce()

    assert failed.value.synthesis_failed is False
    assert failed.value.reason.startswith("telegram upload failed")
    assert len(tg.uploads) == tries
    assert bucket.keys() == []


def test_telegram_throttling_is_waited_out_once(audio_env) -> None:
    _tts, tg, bucket = audio_env
    tg.reply(
        "sendVoice",
        {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 0"}
        | {"parameters": {"retry_after": 0}},
        status=429,
    )

    audio = _produce()

    assert len(tg.uploads) == 2
    assert audio.file_id == "voice-file-1"
    assert bucket.keys() == [audio.key]


def test_storage_failure_is_not_a_synthesis_failure(audio_env, settings) -> None:
    _tts, tg, _bucket = audio_env
    settings.AWS_STORAGE_BUCKET_NAME = "no-such-bucket"
    settings.STORAGES = {**settings.STORAGES}  # rebuild default_storage from the settings

    with pytest.raises(AudioFailed) as failed:
        _produce()

    assert failed.value.synthesis_failed is False
    assert failed.value.reason.startswith("storage failed")
    assert tg.uploads == []


def test_discard_deletes_the_object(audio_env) -> None:
    _tts, _tg, bucket = audio_env
    kept, duplicate = _produce(), _produce()

    story_audio_discard(duplicate)

    assert bucket.keys() == [kept.key]


# --- Public URLs and storage configuration -----------------------------------------------------


def test_r2_public_prefix_wins_and_names_the_full_object_key(audio_env, settings) -> None:
    _tts, _tg, bucket = audio_env
    settings.AWS_LOCATION = "media"
    settings.AWS_S3_CUSTOM_DOMAIN = "cdn.example.org"
    settings.CLOUDFLARE_R2_PUBLIC_URL_PREFIX = "https://pub-123.r2.dev/"
    settings.STORAGES = {**settings.STORAGES}

    audio = _produce()

    assert bucket.keys() == [f"media/{audio.key}"]
    assert audio.url == f"https://pub-123.r2.dev/media/{audio.key}"
    story_audio_discard(audio)
    assert bucket.keys() == []


def test_custom_domain_url_without_public_prefix(audio_env, settings) -> None:
    settings.AWS_S3_CUSTOM_DOMAIN = "cdn.example.org"
    settings.STORAGES = {**settings.STORAGES}

    audio = _produce()

    assert audio.url == f"https://cdn.example.org/{audio.key}"


def test_local_storage_gets_an_absolute_url(
    fake_tts, fake_telegram_voice, settings, tmp_path
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    settings.MEDIA_URL = "/media/"
    settings.PUBLIC_BASE_URL = "https://api.example.org"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }

    audio = _produce(level="B2", topic="travel")

    assert audio.url == f"https://api.example.org/media/{audio.key}"
    assert (tmp_path / audio.key).read_bytes() == FAKE_OGG
    story_audio_discard(audio)
    assert not (tmp_path / audio.key).exists()


def test_s3_storage_options_reach_boto3(s3_storage: S3Bucket) -> None:
    storage: Any = default_storage
    client = storage.connection.meta.client
    assert type(storage._wrapped).__module__ + "." + type(storage._wrapped).__name__ == S3_BACKEND
    assert client.meta.endpoint_url == s3_storage.endpoint_url
    assert client.meta.region_name == "auto"
    assert client.meta.config.signature_version == "s3v4"
    assert storage.default_acl is None
    assert storage.file_overwrite is False
    assert storage.querystring_auth is False
    assert "?" not in storage.url("a/b.ogg")


def test_checksum_options_with_the_proposed_client_config(settings, s3_storage) -> None:
    """The settings change asked for: `AWS_S3_CLIENT_CONFIG` is read by django-storages."""
    settings.AWS_S3_CLIENT_CONFIG = Config(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    settings.STORAGES = {**settings.STORAGES}
    storage: Any = default_storage

    key = storage.save("probe/a.ogg", _ogg_file())

    config = storage.connection.meta.client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.signature_version == "s3v4"
    assert s3_storage.head(key)["ContentType"] == "audio/ogg"


def test_settings_module_sets_checksums_when_required(s3_storage) -> None:
    storage: Any = default_storage
    config = storage.connection.meta.client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"


def _ogg_file() -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("a.ogg", FAKE_OGG, content_type="audio/ogg")


# --- Secrets never reach the logs ---------------------------------------------------------------


@pytest.fixture
def service_account_file(tmp_path, settings, fake_tts) -> dict[str, str]:
    """Real credentials file loading: a service account (self-signed JWT, no token endpoint)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "duoniche-test",
        "private_key_id": "f00dfacecafe0123456789abcdef0123456789ab",
        "private_key": pem,
        "client_email": "tts@duoniche-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": f"{fake_tts.url}/token",
    }
    path = tmp_path / "google-credentials.json"
    path.write_text(json.dumps(info))
    settings.GOOGLE_APPLICATION_CREDENTIALS = str(path)
    return info


def _assert_no_secrets(text: str, credentials: dict[str, str]) -> None:
    for secret in (BULGARIAN_TOKEN, BULGARIAN_TOKEN.split(":")[1], S3_SECRET_KEY):
        assert secret not in text
    assert credentials["private_key_id"] not in text
    assert "PRIVATE KEY" not in text
    assert credentials["private_key"].splitlines()[1] not in text


def test_logs_carry_no_secrets_when_tts_fails(
    audio_env, service_account_file, caplog: pytest.LogCaptureFixture
) -> None:
    tts, _tg, _bucket = audio_env
    caplog.set_level(logging.DEBUG)
    tts.fail(500, f"cannot read {BULGARIAN_STORY}")  # an error that echoes the request text

    with pytest.raises(AudioFailed) as failed:
        _produce()

    [synthesis] = [request for request in tts.requests if request.method == "POST"]
    assert synthesis.headers["authorization"].startswith("Bearer ")  # the file's credentials
    logged = _logged(caplog)
    assert "tts for bot Bulgarian" in logged
    assert "InternalServerError" in logged
    assert BULGARIAN_STORY not in logged
    _assert_no_secrets(logged + failed.value.reason, service_account_file)


@pytest.mark.parametrize("unreachable", [False, True])
def test_logs_carry_no_secrets_when_telegram_fails(
    audio_env, service_account_file, settings, caplog: pytest.LogCaptureFixture, unreachable: bool
) -> None:
    _tts, tg, bucket = audio_env
    caplog.set_level(logging.DEBUG)
    if unreachable:
        settings.TELEGRAM_API_BASE_URL = "http://127.0.0.1:9"  # discard port: refused
    else:
        url = f"{tg.url}/bot{BULGARIAN_TOKEN}/sendVoice"
        for _ in range(telegram.ATTEMPTS):  # a 5xx is retried: it answers every try
            tg.reply(
                "sendVoice",
                {"ok": False, "error_code": 500, "description": f"upstream failed at {url}"},
                status=500,
            )

    with pytest.raises(AudioFailed) as failed:
        _produce()

    logged = _logged(caplog)
    assert "telegram sendVoice for bot Bulgarian failed" in logged
    _assert_no_secrets(logged + failed.value.reason, service_account_file)
    assert bucket.keys() == []


# --- Readiness ---------------------------------------------------------------------------------


def test_pipeline_ready_with_s3(audio_env) -> None:
    assert audio_pipeline_ready("Bulgarian") is None
    assert audio_pipeline_ready("Serbian") is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"GENERATE_AUDIO": False}, "GENERATE_AUDIO is false"),
        (
            {"GOOGLE_APPLICATION_CREDENTIALS": "", "GOOGLE_TTS_ENDPOINT": ""},
            "no TTS credentials (GOOGLE_APPLICATION_CREDENTIALS)",
        ),
        ({"AWS_ACCESS_KEY_ID": ""}, "S3 storage has no access key"),
        ({"AWS_STORAGE_BUCKET_NAME": ""}, "S3 storage has no bucket name"),
        ({"TELEGRAM_BOT_TOKENS_JSON": {"Serbian": SERBIAN_TOKEN}}, "no Telegram bot token for"),
        ({"TELEGRAM_UPLOAD_CHAT_ID": ""}, "TELEGRAM_UPLOAD_CHAT_ID is not set"),
    ],
)
def test_pipeline_not_ready_reasons(
    audio_env, settings, changes: dict[str, Any], reason: str
) -> None:
    for name, value in changes.items():
        setattr(settings, name, value)

    assert (audio_pipeline_ready("Bulgarian") or "").startswith(reason)
    with pytest.raises(AudioFailed) as failed:
        _produce()
    assert failed.value.synthesis_failed is False
    assert audio_env[0].requests == []  # nothing synthesised for nothing


def test_pipeline_credentials_file_alone_is_enough(audio_env, settings) -> None:
    settings.GOOGLE_TTS_ENDPOINT = ""
    settings.GOOGLE_APPLICATION_CREDENTIALS = "/run/secrets/google.json"
    assert audio_pipeline_ready("Bulgarian") is None


def test_pipeline_unknown_bot(audio_env) -> None:
    assert audio_pipeline_ready("Klingon") == "unknown bot id Klingon"


def test_pipeline_local_storage_needs_a_public_base_url(
    fake_tts, fake_telegram_voice, settings
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    settings.PUBLIC_BASE_URL = "https://api.example.org"
    assert audio_pipeline_ready("Bulgarian") is None
    settings.PUBLIC_BASE_URL = ""
    assert audio_pipeline_ready("Bulgarian") == (
        "local storage needs PUBLIC_BASE_URL for public audio URLs"
    )


# --- Broken-audio repair (docs/jobs.md) --------------------------------------------------------


def test_repair_publishes_the_oldest_broken_story(audio_env) -> None:
    tts, tg, bucket = audio_env
    now = timezone.now()
    oldest = _broken_story(persona="Polite Waiter", language_level="B1", topic="restaurant")
    newer = _broken_story()
    _broken_story("Serbian")
    Exercise.objects.filter(pk=oldest.pk).update(created_at=now - timedelta(days=2))
    text = oldest.data["content_text"]

    assert story_repair_one(bot_id="Bulgarian", now=now) == "repaired"

    oldest.refresh_from_db()
    assert oldest.status == ExerciseStatus.PUBLISHED
    assert oldest.status_changed_at == now
    assert oldest.data["content_text"] == text  # never changed
    assert oldest.data["audio_telegram_file_id"] == "voice-file-1"
    [key] = bucket.keys()
    assert re.fullmatch(KEY_PATTERN.format(bot="Bulgarian", level="B1", topic="restaurant"), key)
    assert oldest.data["audio_url"] == f"{bucket.endpoint_url}/{bucket.name}/{key}"
    # The stored persona's style (Rasalgethi is not offered: the default voice).
    [request] = tts.syntheses
    assert request["input"]["text"] == text
    assert request["audioConfig"]["speakingRate"] == 0.95
    assert request["audioConfig"]["pitch"] == 1.0
    assert [upload.token for upload in tg.uploads] == [BULGARIAN_TOKEN]
    newer.refresh_from_db()
    assert newer.status == ExerciseStatus.AUDIO_GENERATION_ERROR


def test_repair_with_nothing_to_repair(audio_env) -> None:
    tts, _tg, _bucket = audio_env
    _broken_story("Serbian")
    _broken_story(status=ExerciseStatus.PROCESSING_ERROR_RETRY)

    assert story_repair_one(bot_id="Bulgarian", now=timezone.now()) == "none"
    assert tts.requests == []


def test_repair_tts_failure_puts_the_story_back(audio_env) -> None:
    tts, tg, bucket = audio_env
    story = _broken_story()
    now = timezone.now() + timedelta(minutes=5)
    tts.fail(500)

    assert story_repair_one(bot_id="Bulgarian", now=now) == "tts_failed"

    story.refresh_from_db()
    assert story.status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert story.status_changed_at == now
    assert story.data["audio_url"] == ""
    assert story.data["audio_telegram_file_id"] == ""
    assert bucket.keys() == []
    assert tg.uploads == []


def test_repair_upload_failure_puts_the_story_back(audio_env) -> None:
    _tts, tg, bucket = audio_env
    story = _broken_story()
    tg.reply(
        "sendVoice", {"ok": False, "error_code": 400, "description": "Bad Request"}, status=400
    )

    assert story_repair_one(bot_id="Bulgarian", now=timezone.now()) == "failed"

    story.refresh_from_db()
    assert story.status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert bucket.keys() == []


def test_repair_not_ready_fails_without_calling_anything(audio_env, settings) -> None:
    tts, _tg, _bucket = audio_env
    story = _broken_story()
    settings.TELEGRAM_UPLOAD_CHAT_ID = ""

    assert story_repair_one(bot_id="Bulgarian", now=timezone.now()) == "failed"

    story.refresh_from_db()
    assert story.status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert tts.requests == []


def _in_thread(target: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `target` in a thread with its own DB connection; result or exception in the dict."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = target()
        except BaseException as exc:  # reported by the test
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


@pytest.mark.django_db(transaction=True)
def test_repair_skips_a_story_locked_by_another_repair(audio_env) -> None:
    """SKIP LOCKED: a row held by another transaction is passed over, not waited for."""
    first, second = _broken_story(), _broken_story()
    Exercise.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=1))
    locked, release = threading.Event(), threading.Event()

    def hold_first() -> None:
        with transaction.atomic():
            Exercise.objects.select_for_update().get(pk=first.pk)
            locked.set()
            release.wait(timeout=30)

    holder, holder_box = _in_thread(hold_first)
    try:
        assert locked.wait(timeout=10)
        repair, box = _in_thread(lambda: story_repair_one(bot_id="Bulgarian", now=timezone.now()))
        repair.join(timeout=20)
        assert not repair.is_alive(), "the repair waited for the locked story"
    finally:
        release.set()
        holder.join(timeout=10)
    assert "error" not in holder_box
    assert box == {"result": "repaired"}
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert second.status == ExerciseStatus.PUBLISHED


@pytest.mark.django_db(transaction=True)
def test_concurrent_repairs_claim_different_stories(audio_env) -> None:
    tts, tg, _bucket = audio_env
    stories = [_broken_story(), _broken_story()]
    start = threading.Barrier(2)
    now = timezone.now()

    def repair() -> str:
        start.wait(timeout=10)
        return story_repair_one(bot_id="Bulgarian", now=now)

    runs = [_in_thread(repair) for _ in range(2)]
    for thread, _box in runs:
        thread.join(timeout=30)

    assert [box for _thread, box in runs] == [{"result": "repaired"}] * 2
    file_ids = set()
    for story in stories:
        story.refresh_from_db()
        assert story.status == ExerciseStatus.PUBLISHED
        file_ids.add(story.data["audio_telegram_file_id"])
    assert len(file_ids) == 2
    assert len(tts.syntheses) == 2
    assert len(tg.uploads) == 2


@pytest.mark.django_db(transaction=True)
def test_repair_of_a_story_changed_meanwhile_discards_its_audio(audio_env) -> None:
    """The final write is conditional on the claim: staff archived the story mid-repair."""
    tts, _tg, bucket = audio_env
    story = _broken_story()

    def archive() -> None:
        Exercise.objects.filter(pk=story.pk).update(status=ExerciseStatus.ARCHIVED)
        connections.close_all()

    tts.on_synthesize = archive

    assert story_repair_one(bot_id="Bulgarian", now=timezone.now()) == "failed"

    story.refresh_from_db()
    assert story.status == ExerciseStatus.ARCHIVED
    assert story.data["audio_url"] == ""
    assert bucket.keys() == []


def test_stale_repairs_go_back_after_an_hour() -> None:
    now = timezone.now()
    stale = _broken_story(status=ExerciseStatus.PROCESSING_ERROR_RETRY)
    fresh = _broken_story(status=ExerciseStatus.PROCESSING_ERROR_RETRY)
    broken = _broken_story()
    Exercise.objects.filter(pk=stale.pk).update(status_changed_at=now - timedelta(minutes=61))
    Exercise.objects.filter(pk__in=[fresh.pk, broken.pk]).update(
        status_changed_at=now - timedelta(minutes=59)
    )

    assert stale_repairs_reset(now=now) == 1

    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.status_changed_at) == (ExerciseStatus.AUDIO_GENERATION_ERROR, now)
    assert fresh.status == ExerciseStatus.PROCESSING_ERROR_RETRY
    assert stale_repairs_reset(now=now) == 0


# --- TTS cooldown (docs/jobs.md) ----------------------------------------------------------------


def test_tts_cooldown(settings) -> None:
    settings.TTS_COOLDOWN_SECONDS = 3600
    failed_at = timezone.now()
    assert tts_cooldown_active(failed_at) is False

    tts_failure_note(failed_at)

    assert tts_cooldown_active(failed_at + timedelta(minutes=59)) is True
    assert cache.get(TTS_COOLDOWN_CACHE_KEY) is not None
    assert tts_cooldown_active(failed_at + timedelta(minutes=61)) is False
    assert cache.get(TTS_COOLDOWN_CACHE_KEY) is None  # forgotten once the time is up
    assert tts_cooldown_active(failed_at + timedelta(minutes=1)) is False


def test_tts_cooldown_ignores_a_garbled_value() -> None:
    cache.set(TTS_COOLDOWN_CACHE_KEY, "not a time")
    assert tts_cooldown_active(timezone.now()) is False
    assert cache.get(TTS_COOLDOWN_CACHE_KEY) is None


# --- The Bot API client's voice upload ---------------------------------------------------------


def test_send_voice_needs_the_bots_token(fake_telegram_voice) -> None:
    with pytest.raises(telegram.TelegramError):
        telegram.send_voice(bot_id="Klingon", chat_id="1", audio=FAKE_OGG, filename="a.ogg")
    assert fake_telegram_voice.requests == []


def test_send_voice_quotes_the_filename(fake_telegram_voice) -> None:
    file_id = telegram.send_voice(
        bot_id="Serbian", chat_id="42", audio=b"\r\n--x\r\n" + FAKE_OGG, filename='my "story".ogg'
    )

    [upload] = fake_telegram_voice.uploads
    assert file_id == "voice-file-1"
    assert upload.fields == {"chat_id": "42"}
    assert upload.files["voice"].filename == 'my "story".ogg'
    assert upload.files["voice"].content == b"\r\n--x\r\n" + FAKE_OGG


def test_constants_match_the_fakes(fake_tts, fake_telegram_voice, s3_storage, settings) -> None:
    """The literals above are the fakes' own values (kept in sync, or this fails)."""
    assert fake_tts.audio == FAKE_OGG
    assert fake_telegram_voice.tokens == {"Bulgarian": BULGARIAN_TOKEN, "Serbian": SERBIAN_TOKEN}
    assert settings.TELEGRAM_UPLOAD_CHAT_ID == UPLOAD_CHAT_ID
    assert settings.AWS_SECRET_ACCESS_KEY == S3_SECRET_KEY
    assert settings.STORAGES["default"]["BACKEND"] == S3_BACKEND


def test_a_missing_credentials_file_is_logged_without_its_path(
    audio_env, settings, caplog: pytest.LogCaptureFixture
) -> None:
    tts, _tg, bucket = audio_env
    settings.GOOGLE_APPLICATION_CREDENTIALS = "/run/secrets/tts-7f3a9c/google.json"

    with pytest.raises(AudioFailed) as failed:
        _produce()

    assert failed.value.synthesis_failed is True  # nothing can be synthesised: cool down
    assert "tts for bot Bulgarian: client setup failed" in _logged(caplog)
    assert "tts-7f3a9c" not in _logged(caplog) + failed.value.reason
    assert tts.requests == []
    assert bucket.keys() == []
