#!/usr/bin/env python3
"""A small payments MCP server written with fastmcp, over stdio.

It stands for a third-party server whose tools the mock does not have: its
manifest is captured with `gauntlet snapshot`, served by `gauntlet mock
--tools`, and attacked through an enforcer under a Stripe-like policy
(`tests/interop_capture.rs`). The tools have the shapes real payment APIs
use: integer amounts in minor units, a currency enum, optional fields.
"""

from __future__ import annotations

import itertools
import os
from typing import Annotated, Literal

# Before fastmcp is imported, so its own settings pick it up.
os.environ.setdefault("FASTMCP_LOG_LEVEL", "WARNING")

from fastmcp import FastMCP  # noqa: E402
from pydantic import Field  # noqa: E402

mcp = FastMCP("payments")
_ids = itertools.count(1)
_payments: dict[str, dict] = {}


@mcp.tool(annotations={"destructiveHint": False, "idempotentHint": False})
def create_payment(
    amount: Annotated[int, Field(ge=1, description="Amount in minor units (cents).")],
    currency: Literal["usd", "eur", "gbp"],
    customer: Annotated[str, Field(min_length=1, description="Customer id, e.g. cus_123.")],
    description: str | None = None,
) -> dict:
    """Charge a customer."""
    payment = {
        "id": f"pay_{next(_ids):06d}",
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "description": description,
        "refunded": 0,
    }
    _payments[payment["id"]] = payment
    return payment


@mcp.tool(annotations={"destructiveHint": True})
def refund_payment(
    payment_id: str,
    amount: Annotated[int | None, Field(ge=1, description="Partial refund; all if absent.")] = None,
) -> dict:
    """Refund a payment, in full or in part."""
    payment = _payments.get(payment_id)
    if payment is None:
        raise ValueError(f"no payment {payment_id}")
    payment["refunded"] += amount or payment["amount"]
    return payment


@mcp.tool(annotations={"readOnlyHint": True})
def list_payments(
    customer: str | None = None,
    limit: Annotated[int, Field(ge=1, le=100)] = 10,
) -> list[dict]:
    """List payments, newest first."""
    found = [p for p in _payments.values() if customer in (None, p["customer"])]
    return found[::-1][:limit]


if __name__ == "__main__":
    mcp.run(show_banner=False)
