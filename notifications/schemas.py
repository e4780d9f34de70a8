"""Schemas of the notification endpoints (Pydantic, lax like the previous service)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, StringConstraints

from duoniche.api.validation import Id, Schema


class TaskIdPath(Schema):
    task_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RelevanceQuery(Schema):
    bot_id: str
    #: No lower bound: an id below 1 is an unknown learner, not relevant (200 false).
    user_id: Id


class RelevanceResponse(BaseModel):
    is_relevant: bool
