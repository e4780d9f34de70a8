"""Schemas of the notification endpoints (Pydantic, lax like the previous service)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from duoniche.api.validation import Schema


class TaskIdPath(Schema):
    task_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RelevanceQuery(Schema):
    bot_id: str
    user_id: int = Field(ge=1)


class RelevanceResponse(BaseModel):
    is_relevant: bool
