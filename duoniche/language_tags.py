"""Learners' interface languages: the one normalisation of the language codes the bots send.

A code enters from outside in three ways: `user_language` in the bodies of `PUT /users/` and
`PUT /users/{id}`, and `telegram_data.language_code` when next-action creates a missing profile
(plus the admin form). None of them is ours: Telegram clients send what they like, and the code
is stored in a `varchar(16)`, keys the verdict cache, picks the texts and feeds the prompts'
language names. So every entry point stores `normalise_language_code(...)`: a BCP-47-like tag
(a 2–3 letter primary subtag, then subtags of 1–8 letters or digits), lower-cased, `_` read as
`-`, cut back a whole subtag at a time to 16 characters; anything else is
`DEFAULT_USER_LANGUAGE`. It never raises: a bot must keep working whatever Telegram sends.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

#: The longest code stored (`BotProfile.user_language` is a `varchar(16)`).
LANGUAGE_CODE_MAX_LENGTH = 16
_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
#: Longer input is not looked at (a tag cut back to 16 characters cannot come from more).
_INPUT_MAX_LENGTH = 64


def normalise_language_code(code: Any) -> str:
    """`code` as a stored interface language (`pt-BR` → `pt-br`); not a language tag → default."""
    if isinstance(code, str) and len(code) <= _INPUT_MAX_LENGTH:
        tag = code.strip().lower().replace("_", "-")
        if _TAG.fullmatch(tag):
            while len(tag) > LANGUAGE_CODE_MAX_LENGTH:
                tag = tag.rsplit("-", 1)[0]
            return tag
    return str(settings.DEFAULT_USER_LANGUAGE)


def is_language_tag(code: Any) -> bool:
    """Whether `code` is kept by `normalise_language_code` (maybe cut back), not replaced."""
    if not isinstance(code, str) or len(code) > _INPUT_MAX_LENGTH:
        return False
    return _TAG.fullmatch(code.strip().lower().replace("_", "-")) is not None


def primary_subtag(code: Any) -> str:
    """The primary language subtag of a normalised code (`pt-br` → `pt`)."""
    return normalise_language_code(code).split("-", 1)[0]
