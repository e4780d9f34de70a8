"""The domain errors of `learning` that the API maps to the wire (`detail` + `code`)."""

from __future__ import annotations

from typing import Any

from duoniche.api.errors import ApplicationError
from duoniche.languages import bot_ids


def user_not_found(user_id: Any, *, status: int = 404) -> ApplicationError:
    return ApplicationError(f"User {user_id} was not found.", code="user_not_found", status=status)


def profile_not_found(user_id: Any, bot_id: str, *, status: int = 404) -> ApplicationError:
    return ApplicationError(
        f"User {user_id} has no profile for the {bot_id} bot.",
        code="profile_not_found",
        status=status,
    )


def invalid_bot(bot_id: str, *, code: str, status: int) -> ApplicationError:
    what = "target language" if code == "invalid_target_language" else "bot id"
    return ApplicationError(
        f"{bot_id!r} is not a configured {what}; valid values: {', '.join(bot_ids())}.",
        code=code,
        status=status,
    )


def report_not_found(user_id: Any, bot_id: str, *, status: int = 404) -> ApplicationError:
    return ApplicationError(
        f"User {user_id} has no weekly report for the {bot_id} bot.",
        code="report_not_found",
        status=status,
    )


def profile_id_not_found(profile_id: Any) -> ApplicationError:
    """A profile named by its own id (the admin's operations) does not exist."""
    return ApplicationError(
        f"Bot profile {profile_id} was not found.", code="profile_not_found", status=404
    )


def report_id_not_found(report_id: Any) -> ApplicationError:
    """A weekly report named by its id (the admin's operations) does not exist."""
    return ApplicationError(
        f"Weekly report {report_id} was not found.", code="report_not_found", status=404
    )
