"""Schemas of the report endpoints (docs/api.md).

The path is the usual (user, bot) pair and the response model was declared with the learner
schemas; both are reused from there so the OpenAPI document has one component of each.
"""

from __future__ import annotations

from learning.schemas import ReportStatusResponse, UserBotPath

__all__ = ["ReportStatusResponse", "UserBotPath"]
