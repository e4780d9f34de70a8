"""Story audio (docs/jobs.md): TTS, storage, Telegram upload and repair.

The one boundary to Google Cloud Text-to-Speech and the audio objects. A story's audio is
synthesised as OGG/Opus (the format of Telegram voice messages), stored under a fresh uuid4 key in
`default_storage` (S3/R2 or local files, chosen by settings), and uploaded to Telegram with the
story's own bot to obtain a `file_id`. Both the public URL and the file id are required; any
failure raises `AudioFailed`, and an object stored for a failed attempt is deleted.

Secrets: nothing here logs a bot token, a URL containing one, the credentials or the story text.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from duoniche import telegram
from duoniche.languages import get_language, latin_to_cyrillic
from duoniche.sentry import scrub_text
from exercises.personas import PERSONAS_BY_NAME, Persona
from exercises.services import story_repair_claim, story_repair_complete, story_repair_release

logger = logging.getLogger(__name__)

TTS_TIMEOUT_SECONDS = 30.0
#: The API refuses more than 5000 bytes of input; we keep a margin.
TTS_MAX_TEXT_BYTES = 4800
TTS_SAMPLE_RATE_HERTZ = 48000
#: Voice names per locale, from `list_voices`, are cached this long.
TTS_VOICES_CACHE_SECONDS = 24 * 3600
TTS_COOLDOWN_CACHE_KEY = "tts:last_failure_at"
#: Default voices per bot id when `TTS_VOICES_JSON` has none (a random one is picked).
DEFAULT_VOICES: dict[str, tuple[str, ...]] = {
    "Bulgarian": ("bg-BG-Standard-A",),
    "Serbian": ("sr-RS-Standard-A",),
}
#: Without a persona, these Chirp3-HD voices are tried first (the previous service's defaults).
NO_PERSONA_VOICES = ("Leda", "Enceladus")
AUDIO_CONTENT_TYPE = "audio/ogg"
UPLOAD_FILENAME = "audio.ogg"
S3_BACKENDS = frozenset(
    {"storages.backends.s3.S3Storage", "storages.backends.s3boto3.S3Boto3Storage"}
)

#: `story_repair_one` outcomes.
REPAIRED = "repaired"
FAILED = "failed"
TTS_FAILED = "tts_failed"
NOTHING_TO_REPAIR = "none"


@dataclass(frozen=True)
class StoryAudio:
    """A stored and uploaded story audio: public URL, Telegram file id, storage key."""

    url: str
    file_id: str
    key: str


class AudioFailed(Exception):
    """Story audio could not be produced; `synthesis_failed` says whether TTS itself failed.

    `reason` is short and safe to log or store: no token, credential or story text.
    """

    def __init__(self, reason: str, *, synthesis_failed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.synthesis_failed = synthesis_failed


# --- Readiness ---------------------------------------------------------------------------------


def _storage_problem() -> str | None:
    backend = str(settings.STORAGES["default"]["BACKEND"])
    if backend in S3_BACKENDS:
        options = settings.STORAGES["default"].get("OPTIONS") or {}
        if not (options.get("access_key") or settings.AWS_ACCESS_KEY_ID) or not (
            options.get("secret_key") or settings.AWS_SECRET_ACCESS_KEY
        ):
            return "S3 storage has no access key"
        if not (options.get("bucket_name") or settings.AWS_STORAGE_BUCKET_NAME):
            return "S3 storage has no bucket name"
        return None
    if backend == "django.core.files.storage.FileSystemStorage" and not settings.PUBLIC_BASE_URL:
        return "local storage needs PUBLIC_BASE_URL for public audio URLs"
    return None


def audio_pipeline_ready(bot_id: str) -> str | None:
    """None when stories of `bot_id` can get audio, else a short reason (docs/jobs.md)."""
    if not settings.GENERATE_AUDIO:
        return "GENERATE_AUDIO is false"
    if not settings.GOOGLE_APPLICATION_CREDENTIALS and not settings.GOOGLE_TTS_ENDPOINT:
        return "no TTS credentials (GOOGLE_APPLICATION_CREDENTIALS)"
    problem = _storage_problem()
    if problem:
        return problem
    if get_language(bot_id) is None:
        return f"unknown bot id {bot_id}"
    if not settings.TELEGRAM_BOT_TOKENS_JSON.get(bot_id):
        return f"no Telegram bot token for {bot_id}"
    if not settings.TELEGRAM_UPLOAD_CHAT_ID:
        return "TELEGRAM_UPLOAD_CHAT_ID is not set"
    return None


# --- TTS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Speech:
    voice: str
    speaking_rate: float
    pitch: float  # 0 = not sent (proto3 default)


def _tts_client() -> Any:
    """A Cloud TTS client over REST; anonymous only against an explicit (local/fake) endpoint.

    Google's libraries are imported here, not at module import: web workers never synthesise.
    """
    from google.auth.credentials import AnonymousCredentials, Credentials
    from google.cloud import texttospeech
    from google.oauth2 import service_account

    credentials: Credentials
    if settings.GOOGLE_APPLICATION_CREDENTIALS:
        # A service-account key file (docs/configuration.md); only that credential type is accepted.
        credentials = service_account.Credentials.from_service_account_file(
            settings.GOOGLE_APPLICATION_CREDENTIALS,
            scopes=["https://www.googleapis.com/auth/cloud-platform"],
        )
    else:
        credentials = AnonymousCredentials()
    options = {"api_endpoint": settings.GOOGLE_TTS_ENDPOINT} if settings.GOOGLE_TTS_ENDPOINT else {}
    return texttospeech.TextToSpeechClient(
        credentials=credentials, transport="rest", client_options=options
    )


def _safe_error(exc: BaseException, *texts: str) -> str:
    """An exception as a short log-safe line: no request text, no credentials path, no token."""
    message = str(exc)
    for text in texts:
        if text:
            message = message.replace(text, "[text]")
    if settings.GOOGLE_APPLICATION_CREDENTIALS:
        message = message.replace(settings.GOOGLE_APPLICATION_CREDENTIALS, "[credentials]")
    message = scrub_text(" ".join(message.split()))
    return f"{exc.__class__.__name__}: {message[:300]}" if message else exc.__class__.__name__


def _locale_voices(client: Any, locale: str) -> frozenset[str]:
    """The voice names the API offers for `locale`, cached for 24 h (empty if the call fails)."""
    key = f"tts:voices:{locale}"
    cached = cache.get(key)
    if isinstance(cached, list):
        return frozenset(cached)
    try:
        response = client.list_voices(language_code=locale, timeout=TTS_TIMEOUT_SECONDS)
    except Exception as exc:
        logger.warning("tts list_voices for %s failed: %s", locale, _safe_error(exc))
        return frozenset()
    names = sorted(voice.name for voice in response.voices)
    cache.set(key, names, timeout=TTS_VOICES_CACHE_SECONDS)
    return frozenset(names)


def _speech(*, client: Any, bot_id: str, locale: str, persona: Persona | None) -> _Speech:
    """Voice, rate and pitch: the persona's Chirp3-HD voice when the locale
    offers it, else one of the language's default voices; Chirp voices take no pitch."""
    if persona is None:
        wanted: tuple[str, ...] = NO_PERSONA_VOICES
    elif persona.preferred_voice:
        wanted = (persona.preferred_voice,)
    else:  # "(language default)"
        wanted = ()
    candidates = [f"{locale}-Chirp3-HD-{name}" for name in wanted]
    if candidates:
        offered = _locale_voices(client, locale)
        candidates = [name for name in candidates if name in offered]
    if not candidates:
        candidates = list(
            settings.TTS_VOICES_JSON.get(bot_id)
            or DEFAULT_VOICES.get(bot_id)
            or (f"{locale}-Standard-A",)
        )
    voice = random.choice(candidates)
    rate = persona.speaking_rate if persona else 1.0
    pitch = persona.pitch if persona and "-Chirp" not in voice else 0.0
    return _Speech(voice=voice, speaking_rate=rate, pitch=pitch)


def _synthesize(*, bot_id: str, locale: str, text: str, persona: Persona | None) -> bytes:
    """OGG/Opus audio of `text`; AudioFailed(synthesis_failed=True) on any API failure."""
    from google.api_core.exceptions import BadRequest
    from google.cloud import texttospeech

    try:
        client = _tts_client()
        speech = _speech(client=client, bot_id=bot_id, locale=locale, persona=persona)
    except Exception as exc:
        logger.warning("tts for bot %s: client setup failed: %s", bot_id, _safe_error(exc, text))
        raise AudioFailed(
            f"synthesis failed: {exc.__class__.__name__}", synthesis_failed=True
        ) from None

    def request(speaking_rate: float, pitch: float) -> Any:
        return texttospeech.SynthesizeSpeechRequest(
            input=texttospeech.SynthesisInput(text=text),
            voice=texttospeech.VoiceSelectionParams(language_code=locale, name=speech.voice),
            audio_config=texttospeech.AudioConfig(
                audio_encoding=texttospeech.AudioEncoding.OGG_OPUS,
                sample_rate_hertz=TTS_SAMPLE_RATE_HERTZ,
                speaking_rate=speaking_rate,
                pitch=pitch,
            ),
        )

    styled = speech.speaking_rate != 1.0 or speech.pitch != 0.0
    try:
        try:
            response = client.synthesize_speech(
                request=request(speech.speaking_rate, speech.pitch), timeout=TTS_TIMEOUT_SECONDS
            )
        except BadRequest as exc:
            if not styled:
                raise
            # The voice may not accept the rate or pitch: once more, plain.
            logger.info(
                "tts for bot %s: voice %s refused the style (%s); retrying without it",
                bot_id,
                speech.voice,
                _safe_error(exc, text),
            )
            response = client.synthesize_speech(
                request=request(1.0, 0.0), timeout=TTS_TIMEOUT_SECONDS
            )
    except Exception as exc:
        logger.warning(
            "tts for bot %s (voice %s) failed: %s", bot_id, speech.voice, _safe_error(exc, text)
        )
        raise AudioFailed(
            f"synthesis failed: {exc.__class__.__name__}", synthesis_failed=True
        ) from None
    audio = bytes(response.audio_content)
    if not audio:
        logger.warning("tts for bot %s (voice %s) returned no audio", bot_id, speech.voice)
        raise AudioFailed("synthesis failed: empty audio", synthesis_failed=True)
    return audio


# --- Storage -----------------------------------------------------------------------------------


def _story_key(*, bot_id: str, level: str, topic: str) -> str:
    """A fresh key per object (a seconds timestamp made stories collide)."""
    return f"{bot_id}/story_audio/{level}/{topic}/{uuid.uuid4().hex}.ogg"


def _is_s3(storage: Any) -> bool:
    from storages.backends.s3 import S3Storage

    return isinstance(storage, S3Storage)


def _public_url(key: str) -> str:
    """The URL stored in `audio_url`."""
    prefix = settings.CLOUDFLARE_R2_PUBLIC_URL_PREFIX.rstrip("/")
    if prefix:
        # The object's full key in the bucket: the backend prepends AWS_LOCATION.
        location = str(getattr(default_storage, "location", "")) if _is_s3(default_storage) else ""
        location = location.strip("/")
        return f"{prefix}/{location}/{key}" if location else f"{prefix}/{key}"
    # S3: the custom domain when set, else the unsigned endpoint URL; local: MEDIA_URL + key.
    url = str(default_storage.url(key))
    if url.startswith(("http://", "https://")):
        return url
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/{url.lstrip('/')}"


def _delete_object(key: str) -> None:
    try:
        default_storage.delete(key)
    except Exception as exc:
        logger.warning("story audio %s could not be deleted: %s", key, _safe_error(exc))


# --- Produce, discard --------------------------------------------------------------------------


def story_audio_produce(
    *, bot_id: str, text: str, persona: str | None, level: str, topic: str
) -> StoryAudio:
    """Synthesise, store and upload a story's audio (docs/jobs.md).

    Raises AudioFailed; `synthesis_failed` is set only when the TTS call itself failed (the caller
    notes the TTS cooldown). A stored object whose later steps failed is deleted.
    """
    problem = audio_pipeline_ready(bot_id)
    if problem:
        raise AudioFailed(f"audio pipeline not ready: {problem}")
    language = get_language(bot_id)
    if language is None:  # checked above; keeps the type narrow
        raise AudioFailed(f"unknown bot id {bot_id}")
    spoken = latin_to_cyrillic(text) if language.language_code == "sr" else text
    if not spoken.strip():
        raise AudioFailed("the story has no text")
    if len(spoken.encode("utf-8")) > TTS_MAX_TEXT_BYTES:
        # A property of this story, not a TTS outage: no cooldown for it.
        raise AudioFailed(f"the story is longer than {TTS_MAX_TEXT_BYTES} bytes for TTS")
    persona_obj = PERSONAS_BY_NAME.get(persona) if persona else None
    if persona and persona_obj is None:
        logger.warning("story audio for bot %s: unknown persona %r, default voice", bot_id, persona)

    audio = _synthesize(bot_id=bot_id, locale=language.tts_locale, text=spoken, persona=persona_obj)

    try:
        key = default_storage.save(
            _story_key(bot_id=bot_id, level=level, topic=topic),
            SimpleUploadedFile(UPLOAD_FILENAME, audio, content_type=AUDIO_CONTENT_TYPE),
        )
    except Exception as exc:
        logger.warning("story audio for bot %s: storing failed: %s", bot_id, _safe_error(exc))
        raise AudioFailed(f"storage failed: {exc.__class__.__name__}") from None

    try:
        url = _public_url(key)
        file_id = telegram.send_voice(
            bot_id=bot_id,
            chat_id=str(settings.TELEGRAM_UPLOAD_CHAT_ID),
            audio=audio,
            filename=UPLOAD_FILENAME,
        )
    except telegram.TelegramError as error:
        _delete_object(key)
        # `telegram` already logged it, scrubbed; the description carries no token.
        raise AudioFailed(f"telegram upload failed: {error.description}") from None
    except Exception as exc:
        _delete_object(key)
        logger.warning("story audio for bot %s: upload failed: %s", bot_id, _safe_error(exc))
        raise AudioFailed(f"upload failed: {exc.__class__.__name__}") from None
    logger.info("story audio for bot %s stored as %s", bot_id, key)
    return StoryAudio(url=url, file_id=file_id, key=key)


def story_audio_discard(audio: StoryAudio) -> None:
    """Delete a produced story's object (its exercise was not saved, e.g. a duplicate)."""
    _delete_object(audio.key)


# --- TTS cooldown (docs/jobs.md) ----------------------------------------------------------------


def tts_cooldown_active(now: datetime) -> bool:
    """Whether a synthesis failed less than `TTS_COOLDOWN_SECONDS` ago; forgets an old one."""
    last = cache.get(TTS_COOLDOWN_CACHE_KEY)
    if last is None:
        return False
    try:
        elapsed = now.timestamp() - float(last)
    except (TypeError, ValueError):
        elapsed = float("inf")
    if elapsed < settings.TTS_COOLDOWN_SECONDS:
        return True
    cache.delete(TTS_COOLDOWN_CACHE_KEY)
    return False


def tts_failure_note(now: datetime) -> None:
    """Remember a synthesis failure: story work pauses for `TTS_COOLDOWN_SECONDS`."""
    cache.set(TTS_COOLDOWN_CACHE_KEY, now.timestamp(), timeout=None)


# --- Broken-audio repair (docs/jobs.md) ---------------------------------------------------------


def story_repair_one(*, bot_id: str, now: datetime) -> str:
    """Voice the oldest story of `bot_id` left without audio (docs/jobs.md).

    Returns "repaired", "failed", "tts_failed" (the synthesis failed: the caller notes the TTS
    cooldown) or "none" (nothing to repair). No HTTP call runs inside a transaction; concurrent
    repairs claim different stories (`SKIP LOCKED`). The story's text is never changed.
    """
    story = story_repair_claim(bot_id=bot_id, now=now)
    if story is None:
        return NOTHING_TO_REPAIR
    try:
        audio = story_audio_produce(
            bot_id=bot_id,
            text=str(story.data.get("content_text") or ""),
            persona=story.persona,
            level=story.language_level,
            topic=story.topic,
        )
    except AudioFailed as failure:
        story_repair_release(story_id=story.pk, claimed_at=now, now=now)
        logger.warning("story #%s audio repair failed: %s", story.pk, failure.reason)
        return TTS_FAILED if failure.synthesis_failed else FAILED
    completed = story_repair_complete(
        story_id=story.pk, claimed_at=now, audio_url=audio.url, audio_file_id=audio.file_id, now=now
    )
    if not completed:
        # Reset as stale (or changed by staff) while we worked: the new object is not used.
        story_audio_discard(audio)
        logger.warning("story #%s changed during its audio repair; audio discarded", story.pk)
        return FAILED
    logger.info("story #%s audio repaired", story.pk)
    return REPAIRED
