"""Request and response schemas of the payment endpoints (Pydantic, lax like the old service)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from duoniche.api.validation import Schema, StoredJson


class InvoiceDetailsPath(Schema):
    source: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    user_id: int = Field(ge=1)
    bot_id: str


class InvoiceDetailsQuery(Schema):
    item_id: int | None = None


class PaymentProcessRequest(Schema):
    telegram_payment_charge_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    amount: int = Field(ge=1)
    invoice_payload: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    currency: Annotated[str, StringConstraints(min_length=1, max_length=10)]
    raw_payment_data: StoredJson | None = None


class LabeledPrice(BaseModel):
    label: str
    amount: int


class TelegramPayment(BaseModel):
    button_text: str
    title: str = Field(max_length=32)
    description: str = Field(max_length=255)
    currency: Literal["XTR"]
    prices: list[LabeledPrice]
    thanks_answer: str
    invoice_payload: str | None = Field(description="Signed invoice payload, at most 128 bytes")


class PaymentProcessResponse(BaseModel):
    status: Literal["success"]
    message: str
