"""The `refill_stock` job body (docs/jobs.md): keep ≥ N untouched published exercises per
(language, type), and repair stories whose audio failed.

Steps: stale repairs go back to `audio_generation_error`; the TTS cooldown is checked; untouched
stock is counted in one grouped query (index `exercise_stock_idx`) and published as a gauge per
(language, type); each language's types get `deficit = max(0, N − count)`; the availability gates
(no LLM → no new exercises; no audio pipeline or TTS cooldown → no story work)
decide what may run; then one *slot* per missing exercise runs in a thread pool of
`GENERATION_CONCURRENCY` (a story slot first tries to repair a broken story). A TTS failure in
the run starts the cooldown.

Idempotent: deficits are recomputed from the DB every run, the job lock stops two runs from filling
the same deficit, and `content_hash` uniqueness stops identical exercises. The job runner
(`duoniche.jobs`) calls `stock_refill`; nothing else should.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from queue import Empty, SimpleQueue
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count

from duoniche import llm_models
from duoniche.enums import ExerciseStatus, ExerciseType, LLMPurpose
from duoniche.languages import languages
from exercises import audio, generation
from exercises.models import Exercise
from exercises.services import stale_repairs_reset

logger = logging.getLogger(__name__)

STORY = ExerciseType.STORY_COMPREHENSION.value
DISABLED_PREFIX = "exercise generation disabled: "


@dataclass
class _Pair:
    """Counters of one (language, type) in this run (`stats` entry)."""

    untouched: int
    deficit: int
    generated: int = 0
    rejected: int = 0
    failed: int = 0
    repaired: int = 0
    duplicates: int = 0
    skipped_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "untouched": self.untouched,
            "deficit": self.deficit,
            "generated": self.generated,
            "rejected": self.rejected,
            "failed": self.failed,
            "repaired": self.repaired,
            "duplicates": self.duplicates,
            "skipped_reason": self.skipped_reason,
        }


@dataclass
class _Run:
    """Shared state of one refill run; the slots update it from their threads."""

    now: datetime
    generation_disabled: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    tts_failed: threading.Event = field(default_factory=threading.Event)
    pairs: dict[tuple[str, str], _Pair] = field(default_factory=dict)

    def count(self, bot_id: str, exercise_type: str, counter: str) -> None:
        with self.lock:
            pair = self.pairs[(bot_id, exercise_type)]
            setattr(pair, counter, getattr(pair, counter) + 1)

    def skip(self, bot_id: str, exercise_type: str, reason: str) -> None:
        with self.lock:
            pair = self.pairs[(bot_id, exercise_type)]
            pair.skipped_reason = pair.skipped_reason or reason


def untouched_stock() -> dict[tuple[str, str], int]:
    """Untouched (published, never attempted) exercises per (language, type): one grouped query."""
    rows = (
        Exercise.objects.filter(status=ExerciseStatus.PUBLISHED, attempts_count=0)
        .values_list("exercise_language", "exercise_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(language, exercise_type): n for language, exercise_type, n in rows}


def stock_refill(*, now: datetime, dry_run: bool = False) -> dict[str, Any]:
    """Refill the stock once (docs/jobs.md); `dry_run` only computes and reports."""
    reset = 0 if dry_run else stale_repairs_reset(now=now)
    tts_cooldown = audio.tts_cooldown_active(now)
    if tts_cooldown:
        logger.warning("story work skipped: TTS cooldown after a recent synthesis failure")

    counts = untouched_stock()
    minimum = int(settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW)
    disabled = _disabled_message(generation.generation_disabled_reason())
    if disabled:
        logger.warning("%s", disabled)
    run = _Run(now=now, generation_disabled=disabled)

    slots: list[tuple[str, str]] = []
    for bot_id, language in languages().items():
        story_block = _story_block(bot_id, tts_cooldown=tts_cooldown)
        for exercise_type in language.generated_types:
            count = counts.get((bot_id, exercise_type), 0)
            pair = _Pair(untouched=count, deficit=max(0, minimum - count))
            run.pairs[(bot_id, exercise_type)] = pair
            if exercise_type == STORY:
                if story_block and pair.deficit:
                    logger.warning("stories of %s skipped: %s", bot_id, story_block)
                # Repairs run without the LLM; generation inside the slot checks `disabled`.
                pair.skipped_reason = story_block or (
                    f"{disabled} (repairs only)" if disabled else None
                )
                runnable = story_block is None
            else:
                pair.skipped_reason = disabled
                runnable = disabled is None
            if runnable:
                slots.extend([(bot_id, exercise_type)] * pair.deficit)

    if not dry_run and slots:
        _run_slots(run, _interleaved(slots))
        if run.tts_failed.is_set():
            audio.tts_failure_note(now)

    return _stats(run, dry_run=dry_run, reset=reset, tts_cooldown=tts_cooldown, slots=len(slots))


def _disabled_message(reason: str | None) -> str | None:
    """The log line and stats text `exercise generation disabled: <reason>`, or None."""
    if not reason:
        return None
    return reason if reason.startswith(DISABLED_PREFIX) else f"{DISABLED_PREFIX}{reason}"


def _story_block(bot_id: str, *, tts_cooldown: bool) -> str | None:
    """Why no story work happens for this language in this run, or None."""
    not_ready = audio.audio_pipeline_ready(bot_id)
    if not_ready:
        return f"audio pipeline not ready: {not_ready}"
    if tts_cooldown:
        return "TTS cooldown after a synthesis failure"
    return None


def _interleaved(slots: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Round-robin over (language, type), so concurrent slots spread over the pairs."""
    queues: dict[tuple[str, str], int] = defaultdict(int)
    for slot in slots:
        queues[slot] += 1
    ordered: list[tuple[str, str]] = []
    while queues:
        for slot in list(queues):
            ordered.append(slot)
            queues[slot] -= 1
            if not queues[slot]:
                del queues[slot]
    return ordered


def _run_slots(run: _Run, slots: list[tuple[str, str]]) -> None:
    """Run the slots on `GENERATION_CONCURRENCY` threads, each taking the next slot until none is
    left, then closing its own DB connection (one connection per thread, not per slot)."""
    pending: SimpleQueue[tuple[str, str]] = SimpleQueue()
    for slot in slots:
        pending.put(slot)
    stop = threading.Event()

    def worker() -> None:
        try:
            while not stop.is_set():
                try:
                    bot_id, exercise_type = pending.get_nowait()
                except Empty:
                    return
                _slot(run, bot_id, exercise_type)
        finally:
            connection.close()

    threads = min(max(1, int(settings.GENERATION_CONCURRENCY)), len(slots))
    _warm_up_llm(run)
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="refill")
    try:
        for future in [executor.submit(worker) for _ in range(threads)]:
            future.result()
    except BaseException:
        # A soft time limit (or shutdown) lands here: no new slot starts, running ones finish.
        stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _warm_up_llm(run: _Run) -> None:
    """Build the chat models once before the threads start.

    The OpenAI client's HTTP client is cached per base URL, but N threads building it at the same
    moment each build one (loading the CA bundle, ~0.15 s of CPU under the GIL each): a slow start
    for every slot of the first round. No request is made here.
    """
    if run.generation_disabled is not None:
        return
    try:
        for purpose in (LLMPurpose.GENERATION, LLMPurpose.ASSESSMENT):
            llm_models.chat_model(purpose)
    except Exception:  # the slots will report the real problem
        logger.debug("LLM warm-up failed", exc_info=True)


def _slot(run: _Run, bot_id: str, exercise_type: str) -> None:
    try:
        if exercise_type == STORY:
            _story_slot(run, bot_id)
        else:
            _generate(run, bot_id, exercise_type)
    except Exception:
        logger.exception("refill slot %s/%s crashed", bot_id, exercise_type)
        run.count(bot_id, exercise_type, "failed")


def _story_slot(run: _Run, bot_id: str) -> None:
    if run.tts_failed.is_set():
        # TTS failed earlier in this run: the cooldown starts now, so no more story work.
        run.skip(bot_id, STORY, "TTS failed in this run; cooldown started")
        return
    repair = audio.story_repair_one(bot_id=bot_id, now=run.now)
    if repair == "repaired":
        run.count(bot_id, STORY, "repaired")
        return
    if repair == "tts_failed":
        run.tts_failed.set()
        run.count(bot_id, STORY, "failed")
        return
    if repair == "failed":
        run.count(bot_id, STORY, "failed")
    if run.generation_disabled is None:
        _generate(run, bot_id, STORY)


def _generate(run: _Run, bot_id: str, exercise_type: str) -> None:
    result = generation.exercise_generate(bot_id=bot_id, exercise_type=exercise_type, now=run.now)
    if result.tts_failed:
        run.tts_failed.set()
    counter = {
        "generated": "generated",
        "rejected": "rejected",
        "failed": "failed",
        "duplicate": "duplicates",
    }.get(result.outcome, "failed")
    run.count(bot_id, exercise_type, counter)
    if result.outcome not in ("generated", "rejected"):
        logger.info(
            "refill %s/%s: %s (%s)", bot_id, exercise_type, result.outcome, result.reason or "-"
        )


def _stats(
    run: _Run, *, dry_run: bool, reset: int, tts_cooldown: bool, slots: int
) -> dict[str, Any]:
    stock: dict[str, dict[str, Any]] = defaultdict(dict)
    totals: dict[str, int] = defaultdict(int)
    for (bot_id, exercise_type), pair in run.pairs.items():
        entry = pair.as_dict()
        stock[bot_id][exercise_type] = entry
        for key, value in entry.items():
            if isinstance(value, int) and key != "untouched":
                totals[key] += value
    return {
        "dry_run": dry_run,
        "stale_repairs_reset": reset,
        "tts_cooldown": tts_cooldown,
        "tts_failed": run.tts_failed.is_set(),
        "generation_disabled": run.generation_disabled,
        "slots": slots,
        "totals": dict(totals),
        "stock": dict(stock),
    }
